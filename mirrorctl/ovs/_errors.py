"""Errors of OVS mirror control. Messages say what went wrong and what to do; fields carry facts."""

from __future__ import annotations

from capture import MirrorscopeError


class MirrorError(MirrorscopeError):
    """Setting up or inspecting OVS mirroring failed."""


class OVSDBUnreachableError(MirrorError):
    """The OVSDB endpoint did not answer."""

    exit_code = 3

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(
            f"cannot reach OVSDB at {endpoint}: {reason} "
            "(is ovsdb-server running? pass --ovsdb or set MIRRORSCOPE_OVSDB)"
        )
        self.endpoint = endpoint
        self.reason = reason


class NotFoundError(MirrorError):
    """A bridge, pod, namespace or interface the user named does not exist."""

    exit_code = 2

    def __init__(self, message: str, *, kind: str = "", name: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class UsageError(MirrorscopeError):
    """The command line or an argument value is malformed (bad endpoint, bad NS/NAME)."""

    exit_code = 2


class OVSDBError(MirrorError):
    """OVSDB answered but refused or failed a transaction."""

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(f"OVSDB at {endpoint} rejected the change: {detail}")
        self.endpoint = endpoint
        self.detail = detail


class LinkError(MirrorError):
    """A netlink operation on a link failed, or the link never appeared."""

    def __init__(self, ifname: str, netns: str | None, detail: str) -> None:
        where = f"netns {netns}" if netns else "the host netns"
        super().__init__(f"link {ifname} in {where}: {detail}")
        self.ifname = ifname
        self.netns = netns
        self.detail = detail


class VswitchdTimeoutError(MirrorError):
    """OVSDB took the change but ovs-vswitchd did not apply it in time."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        super().__init__(
            f"ovs-vswitchd did not apply the change in OVSDB at {endpoint} within {timeout:g} s: "
            "is ovs-vswitchd running? (the change stays in OVSDB and applies when it starts)"
        )
        self.endpoint = endpoint
        self.timeout = timeout
