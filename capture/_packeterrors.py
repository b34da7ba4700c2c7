"""The errors of an AF_PACKET capture, in words an operator can act on.

``open_error`` turns an OSError from setting the socket and ring up into a ``CaptureError`` with
a hint (no such interface, missing privilege, a ring too large); ``capture_failed`` does the same
for the error the socket reports while capturing (SO_ERROR: the interface went away).
"""

from __future__ import annotations

import errno
import os

from capture._errors import CaptureError

__all__ = ["capture_failed", "open_error"]

_OPEN_HINTS = {
    errno.ENODEV: "no such interface: check the name with `ip link`",
    errno.EPERM: "live capture needs root or CAP_NET_RAW",
    errno.EACCES: "live capture needs root or CAP_NET_RAW",
    errno.ENOMEM: "the kernel could not allocate the ring: lower block_size/block_count",
    errno.EINVAL: "the kernel rejected the settings",
    errno.ENETDOWN: "the interface is down",
}
_CAPTURE_HINTS = {
    errno.ENETDOWN: "the interface went down",
    errno.ENXIO: "the interface was removed",
    errno.ENODEV: "the interface was removed",
}


def open_error(e: OSError, what: str, iface: str) -> CaptureError:
    """*what* failed with *e* while opening a capture on *iface*."""
    hint = _OPEN_HINTS.get(e.errno or 0, "")
    detail = f"{e.strerror or e}" + (f" ({hint})" if hint else "")
    return CaptureError(f"{what}: {detail}", source=iface, errno=e.errno)


def capture_failed(code: int, where: str, iface: str) -> CaptureError:
    """The capture on *iface* (described as *where*) failed with socket error *code*."""
    hint = _CAPTURE_HINTS.get(code, "socket error")
    return CaptureError(
        f"capture on {where} failed: {os.strerror(code)} ({hint})", source=iface, errno=code
    )
