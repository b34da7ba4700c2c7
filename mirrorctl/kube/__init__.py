"""Finding a cluster's agents through the Kubernetes API server (the kubectl plugin's side)."""

from mirrorctl.kube._agents import SELECTOR, Agent, agent_targets, find_agents, get_json, token_of
from mirrorctl.kube._config import ApiServer, KubeError, api_server, kubeconfig

__all__ = [
    "SELECTOR",
    "Agent",
    "ApiServer",
    "KubeError",
    "agent_targets",
    "api_server",
    "find_agents",
    "get_json",
    "kubeconfig",
    "token_of",
]
