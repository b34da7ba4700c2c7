"""The capture service: source → AnalysisPipeline → sinks, for one worker, N workers and files."""

# Names resolve on first use (PEP 562): `capture read` must not pay for the OVSDB feed and the
# forking runtime it never runs.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirrorctl.service._assemble import Assembly, Outputs, assemble, offline_source
    from mirrorctl.service._config import (
        NETNS_ENV,
        TOKEN_ENV,
        RunConfig,
        pipeline_options,
        resolve_token,
        run_config,
    )
    from mirrorctl.service._embed import LiveCapture, Pipeline, analyse_pcap, live_capture
    from mirrorctl.service._identity import identity_map
    from mirrorctl.service._read import identity_from_args, read_files
    from mirrorctl.service._runtime import run_single
    from mirrorctl.service._workers import run_multi

_LAZY: dict[str, str] = {
    "Assembly": "mirrorctl.service._assemble",
    "LiveCapture": "mirrorctl.service._embed",
    "NETNS_ENV": "mirrorctl.service._config",
    "Outputs": "mirrorctl.service._assemble",
    "Pipeline": "mirrorctl.service._embed",
    "RunConfig": "mirrorctl.service._config",
    "TOKEN_ENV": "mirrorctl.service._config",
    "analyse_pcap": "mirrorctl.service._embed",
    "assemble": "mirrorctl.service._assemble",
    "identity_from_args": "mirrorctl.service._read",
    "identity_map": "mirrorctl.service._identity",
    "live_capture": "mirrorctl.service._embed",
    "offline_source": "mirrorctl.service._assemble",
    "pipeline_options": "mirrorctl.service._config",
    "read_files": "mirrorctl.service._read",
    "resolve_token": "mirrorctl.service._config",
    "run_config": "mirrorctl.service._config",
    "run_multi": "mirrorctl.service._workers",
    "run_single": "mirrorctl.service._runtime",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirrorctl.service' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__: list[str] = [
    "NETNS_ENV",
    "TOKEN_ENV",
    "Assembly",
    "LiveCapture",
    "Outputs",
    "Pipeline",
    "RunConfig",
    "analyse_pcap",
    "assemble",
    "identity_from_args",
    "identity_map",
    "live_capture",
    "offline_source",
    "pipeline_options",
    "read_files",
    "resolve_token",
    "run_config",
    "run_multi",
    "run_single",
]
