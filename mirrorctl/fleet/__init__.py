"""Asking every node's agent at once and merging what they answer (issue 19).

On a cluster one agent runs per node and a pod's packets are on whichever node it ran on. No
central component collects them: the client asks each agent (``--server`` URLs, a headless
Service's addresses, or the pods the Kubernetes API server lists) in parallel and merges.
"""

from mirrorctl.fleet._fetch import Answer, Unanswered, ask, ask_all
from mirrorctl.fleet._pcapfollow import follow_merged
from mirrorctl.fleet._pcapmerge import NOTHING, MergedPcapng, MergeReport, merge_downloads
from mirrorctl.fleet._targets import (
    TOKEN_HEADER,
    Target,
    targets_from_dns,
    targets_from_urls,
    token_headers,
)

__all__ = [
    "NOTHING",
    "TOKEN_HEADER",
    "Answer",
    "MergeReport",
    "MergedPcapng",
    "Target",
    "Unanswered",
    "ask",
    "ask_all",
    "follow_merged",
    "merge_downloads",
    "targets_from_dns",
    "targets_from_urls",
    "token_headers",
]
