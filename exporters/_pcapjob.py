"""What a pcap store's capture thread hands its writer thread (a ``Job``), and the packing of a
batch's frames into pcap records, which happens on whichever side owns the bytes.

A live capture's batch already sits in a private copy of its ring block (``bytes``: nobody can
change it or give it back), so the writer thread can pack its records itself: the capture thread
then spends nothing per frame on the store but the MAC learning and a queue append, and the copy
runs in the writer, compiled and without the GIL. A batch over a buffer its source may reuse is
packed in the capture thread, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers import DecodedBatch
from capture import FrameBatch, pcap_records, pcap_records_into
from exporters._pcapstoreconfig import RECORD_HEADER

__all__ = ["Job", "immutable", "pack"]


@dataclass(frozen=True, slots=True)
class Job:
    """Work for the writer thread: a batch (``packed``: its ``data`` is already its pcap
    records, ``offsets`` point at each frame inside them; else its frames, in an immutable
    buffer the writer packs them from), a ``tick``, or a ``close``."""

    now: float
    batch: FrameBatch | None = None
    decoded: DecodedBatch | None = None
    close: bool = False
    packed: bool = False


def immutable(data: npt.NDArray[np.uint8]) -> bool:
    """Whether ``data`` views a ``bytes`` object, which nobody can change or hand back (the
    capture source's copy of a ring block is one)."""
    base: object = data
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, bytes)


def pack(batch: FrameBatch, snaplen: int) -> FrameBatch:
    """``batch`` as its pcap records (the copy of its frame bytes) with offsets into them."""
    records = pcap_records(batch, snaplen)
    caplens = np.minimum(batch.caplens, snaplen)
    return FrameBatch(
        data=records,
        offsets=np.cumsum(caplens + RECORD_HEADER) - caplens,
        caplens=caplens,
        wirelens=batch.wirelens.copy(),
        ts_ns=batch.ts_ns.copy(),
        linktype=batch.linktype,
    )


def records_into(
    batch: FrameBatch, rows: slice, snaplen: int, out: npt.NDArray[np.uint8], *, packed: bool
) -> None:
    """The pcap records of ``batch``'s ``rows`` into ``out``, which is exactly their size:
    copied when the batch is ``packed`` (its data is its records), else packed from its frames."""
    if packed:
        start = int(batch.offsets[rows.start]) - RECORD_HEADER
        out[:] = batch.data[start : start + out.shape[0]]
        return
    pcap_records_into(batch, rows, snaplen, out)
