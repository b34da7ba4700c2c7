"""Compiling tcpdump filter expressions to classic BPF with libpcap, and attaching them.

The expression is never translated by hand: libpcap's own compiler (through ctypes, on
``libpcap.so.0.8`` as Debian ships it) produces the program, exactly as tcpdump would for an
Ethernet capture. The program's ``ret`` values carry the snap length, which is how the kernel
truncates frames in a TPACKET_V3 ring (the ring has no snaplen option of its own).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from dataclasses import dataclass

from capture._errors import CaptureError

__all__ = ["BpfProgram", "attach_filter", "compile_filter"]

DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44

_INSN = struct.Struct("=HBBI")  # struct bpf_insn and struct sock_filter share this layout


class _BpfInsn(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    )


class _BpfProgram(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn)))


@dataclass(frozen=True, slots=True)
class BpfProgram:
    """A compiled classic BPF program: ``(code, jt, jf, k)`` per instruction."""

    expression: str
    snaplen: int
    instructions: tuple[tuple[int, int, int, int], ...]

    def to_bytes(self) -> bytes:
        """The instructions as the kernel's ``struct sock_filter`` array."""
        return b"".join(_INSN.pack(*insn) for insn in self.instructions)

    def dump(self) -> str:
        """The program in ``tcpdump -ddd`` style (count, then one instruction per line)."""
        lines = [str(len(self.instructions))]
        lines += [f"{c} {jt} {jf} {k}" for c, jt, jf, k in self.instructions]
        return "\n".join(lines)


def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise CaptureError(
            f"cannot load libpcap ({name}) to compile the capture filter: {e} "
            "(install libpcap0.8, see scripts/bootstrap.sh)"
        ) from e
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    )
    lib.pcap_freecode.restype = None
    lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgram),)
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
    lib.pcap_close.restype = None
    lib.pcap_close.argtypes = (ctypes.c_void_p,)
    return lib


def compile_filter(
    expression: str | None, *, snaplen: int = 65535, linktype: int = DLT_EN10MB
) -> BpfProgram:
    """Compile a tcpdump expression (``None`` or empty: accept all) for ``linktype`` frames.

    Raises ``CaptureError`` naming the expression and libpcap's message when it does not compile.
    """
    expr = (expression or "").strip()
    lib = _libpcap()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise CaptureError(f"libpcap could not open a handle for link type {linktype}")
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN):
            reason = (lib.pcap_geterr(handle) or b"unknown error").decode(errors="replace")
            raise CaptureError(
                f"invalid capture filter {expr!r}: {reason} "
                "(the filter uses tcpdump syntax, see pcap-filter(7))",
                source=expr,
            )
        try:
            insns = tuple(
                (
                    prog.bf_insns[i].code,
                    prog.bf_insns[i].jt,
                    prog.bf_insns[i].jf,
                    prog.bf_insns[i].k,
                )
                for i in range(prog.bf_len)
            )
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return BpfProgram(expression=expr, snaplen=snaplen, instructions=insns)


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """Attach ``program`` to ``sock`` (SO_ATTACH_FILTER): frames it rejects never reach us."""
    code = ctypes.create_string_buffer(program.to_bytes())
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }, native alignment.
    fprog = struct.pack("@HP", len(program.instructions), ctypes.addressof(code))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as e:
        raise CaptureError(
            f"the kernel refused the capture filter {program.expression!r}: {e.strerror}",
            source=program.expression,
            errno=e.errno,
        ) from e
