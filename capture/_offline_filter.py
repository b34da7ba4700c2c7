"""A tcpdump filter expression applied to frames read from files (``capture read --filter``).

Live capture attaches the compiled program to the socket, so the kernel filters. A file has no
kernel in the way, so each frame is run through libpcap's own BPF interpreter, ``bpf_filter``
(the function ``pcap_offline_filter`` calls), via ctypes: the same compiler and the same
interpreter tcpdump uses, never a hand translation. The cost is one foreign call per frame, about
a microsecond, paid only when a filter is given.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import numpy as np

from capture._batch import FrameBatch
from capture._bpf import _libpcap as _load_libpcap  # one loader for the library
from capture._bpf import compile_filter
from capture._protocols import FrameSource, SourceStats

#: pcap LINKTYPE_ values whose libpcap DLT_ value differs (DLT_RAW is 12 on Linux).
_DLT_OF_LINKTYPE = {101: 12}


class FilteredSource:
    """``source``'s batches with only the frames ``expression`` accepts (``FrameSource``)."""

    def __init__(self, source: FrameSource, expression: str) -> None:
        self._source = source
        self.expression = expression
        compile_filter(expression)  # a bad expression fails here, before any frame is read
        lib = _load_libpcap()
        self._bpf_filter = lib.bpf_filter
        self._bpf_filter.restype = ctypes.c_uint
        self._bpf_filter.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)
        self._programs: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self.rejected = 0

    def _program(self, linktype: int) -> ctypes.Array[ctypes.c_char]:
        prog = self._programs.get(linktype)
        if prog is None:
            dlt = _DLT_OF_LINKTYPE.get(linktype, linktype)
            compiled = compile_filter(self.expression, snaplen=262_144, linktype=dlt)
            prog = self._programs[linktype] = ctypes.create_string_buffer(compiled.to_bytes())
        return prog

    def batches(self) -> Iterator[FrameBatch]:
        for batch in self._source.batches():
            n = len(batch)
            if n == 0:
                continue
            pc = ctypes.addressof(self._program(batch.linktype))
            base = batch.data.ctypes.data
            run = self._bpf_filter
            keep = np.fromiter(
                (
                    run(pc, base + off, wire, cap) != 0
                    for off, wire, cap in zip(
                        batch.offsets.tolist(),
                        batch.wirelens.tolist(),
                        batch.caplens.tolist(),
                        strict=True,
                    )
                ),
                dtype=np.bool_,
                count=n,
            )
            kept = int(keep.sum())
            self.rejected += n - kept
            if kept == n:
                yield batch
            elif kept:
                yield FrameBatch(
                    data=batch.data,
                    offsets=batch.offsets[keep],
                    caplens=batch.caplens[keep],
                    wirelens=batch.wirelens[keep],
                    ts_ns=batch.ts_ns[keep],
                    linktype=batch.linktype,
                )

    def stats(self) -> SourceStats:
        """The underlying source's counters (frames read, before the filter)."""
        return self._source.stats()

    def close(self) -> None:
        self._source.close()
