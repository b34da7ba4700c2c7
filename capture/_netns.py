"""Opening a socket inside a named network namespace without moving the caller.

A socket stays in the namespace it was created in, so only its creation has to happen there.
``setns`` switches the namespace of the calling *thread*; doing it in a short-lived helper thread
means the caller's thread never changes namespace, so no failure path can leave it in the wrong one.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from capture._errors import CaptureError

__all__ = ["netns_path", "socket_in_netns"]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"


def netns_path(netns: str) -> str:
    """``ip netns`` name to its bind-mount path; an absolute path is used as given."""
    return netns if netns.startswith("/") else os.path.join(NETNS_RUN_DIR, netns)


def _setns(fd: int, nstype: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in_netns(netns: str | None, family: int, kind: int, proto: int) -> socket.socket:
    """Create a socket in network namespace ``netns`` (``None``: the caller's own)."""
    if netns is None:
        return socket.socket(family, kind, proto)
    path = netns_path(netns)
    outcome: list[socket.socket | OSError] = []

    def create() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome.append(socket.socket(family, kind, proto))
        except OSError as e:
            outcome.append(e)

    helper = threading.Thread(target=create, name=f"netns-socket-{netns}", daemon=True)
    helper.start()
    helper.join()
    result = outcome[0] if outcome else OSError(0, "helper thread failed")
    if isinstance(result, OSError):
        what = f"network namespace {netns!r} ({path})"
        hint = (
            "create it with `ip netns add` or check the name"
            if isinstance(result, FileNotFoundError)
            else "capturing needs root (CAP_NET_RAW and CAP_SYS_ADMIN)"
        )
        raise CaptureError(
            f"cannot open a capture socket in {what}: {result.strerror or result} ({hint})",
            source=netns,
            errno=result.errno,
        ) from result
    return result
