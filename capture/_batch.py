"""The unit of work between capture and analysis: a batch of frames sharing one buffer.

A batch is what one TPACKET_V3 ring block (or one chunk of a pcap file) holds. Frames are not copied
into per-packet objects: they stay in ``data`` and are addressed by parallel numpy columns, so the
analyzers can read header fields for the whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Link-layer header types (the pcap LINKTYPE_* registry) the decoders understand.
LINKTYPE_NULL = 0  # BSD loopback: a 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50  # PPP in HDLC-like framing, or Cisco HDLC
LINKTYPE_IEEE802_11 = 105
LINKTYPE_LOOP = 108  # OpenBSD loopback: the address family in network byte order
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Frames that arrived together, addressed by offset into one shared buffer.

    ``data`` is a read-only uint8 view; ``offsets[i]:offsets[i]+caplens[i]`` is frame *i*
    as captured (after snaplen), ``wirelens[i]`` its length on the wire, ``ts_ns[i]`` its
    arrival time in nanoseconds since the Unix epoch. All columns have the same length.
    """

    data: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]
    caplens: npt.NDArray[np.int64]
    wirelens: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]
    linktype: int = LINKTYPE_ETHERNET

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def frame(self, i: int) -> bytes:
        """Frame *i* as bytes (for the slow paths: DNS payloads, pcap writing, tests)."""
        start = int(self.offsets[i])
        return self.data[start : start + int(self.caplens[i])].tobytes()

    @classmethod
    def from_frames(
        cls,
        frames: list[bytes],
        ts_ns: list[int],
        wirelens: list[int] | None = None,
        linktype: int = LINKTYPE_ETHERNET,
    ) -> FrameBatch:
        """Build a batch from individual frames (tests, fixtures, small readers)."""
        lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
        offsets = np.zeros(len(frames), dtype=np.int64)
        if len(frames) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(frames), dtype=np.uint8)
        wl = lengths.copy() if wirelens is None else np.asarray(wirelens, dtype=np.int64)
        return cls(
            data=data,
            offsets=offsets,
            caplens=lengths,
            wirelens=wl,
            ts_ns=np.asarray(ts_ns, dtype=np.int64),
            linktype=linktype,
        )
