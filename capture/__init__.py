"""Capture: read frames from the mirror NIC (AF_PACKET, TPACKET_V3) or pcap files, in batches."""

from typing import Any

from capture._afpacket import FANOUT_FLAG_DEFRAG, FANOUT_HASH, AfPacketSource
from capture._batch import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    FrameBatch,
)
from capture._bpf import BpfProgram, compile_filter
from capture._coalesce import DEFAULT_COALESCE_MS
from capture._errors import CaptureError, MirrorscopeError
from capture._jit import njit, njit_inline
from capture._netns import netns_path
from capture._offline_filter import FilteredSource
from capture._pcapfile import (
    CorruptCaptureFileError,
    PcapFileSource,
    PcapLayout,
    RecordWalker,
    open_capture_file,
)
from capture._pcapngstream import StreamInterface, StreamPacket, read_pcapng_stream
from capture._pcapngwriter import PcapngWriter
from capture._pcapwriter import PcapWriter, pcap_file_header, pcap_records, pcap_records_into
from capture._protocols import BatchSink, FrameSource, SourceStats
from capture._readahead import ReadAhead
from capture._ringblock import (
    DEFAULT_BLOCK_COUNT,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCK_TIMEOUT_MS,
    BlockWalker,
    block_to_batch,
)
from capture._ringlayout import TP_STATUS_VLAN_VALID, lay_out_block
from capture._service import CaptureService, ServiceResult, stop_on_signals

__all__ = [
    "DEFAULT_BLOCK_COUNT",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_BLOCK_TIMEOUT_MS",
    "DEFAULT_COALESCE_MS",
    "FANOUT_FLAG_DEFRAG",
    "FANOUT_HASH",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IEEE802_11",
    "LINKTYPE_IEEE802_11_RADIOTAP",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_PPP",
    "LINKTYPE_PPP_HDLC",
    "LINKTYPE_RAW",
    "TP_STATUS_VLAN_VALID",
    "AfPacketSource",
    "BatchSink",
    "BlockWalker",
    "BpfProgram",
    "CaptureError",
    "CaptureService",
    "CorruptCaptureFileError",
    "FilteredSource",
    "FrameBatch",
    "FrameSource",
    "MirrorscopeError",
    "PcapFileSource",
    "PcapLayout",
    "PcapWriter",
    "PcapngWriter",
    "ReadAhead",
    "RecordWalker",
    "ServiceResult",
    "SourceStats",
    "StreamInterface",
    "StreamPacket",
    "block_to_batch",
    "compile_filter",
    "lay_out_block",
    "load_le64",
    "netns_path",
    "njit",
    "njit_inline",
    "open_capture_file",
    "pcap_file_header",
    "pcap_records",
    "pcap_records_into",
    "prefetch",
    "read_pcapng_stream",
    "read_record",
    "ring_ahead",
    "ring_frame",
    "stop_on_signals",
    "stream_ahead",
    "unowned",
]


def __getattr__(name: str) -> Any:
    # ``prefetch`` (a cache hint for compiled loops) is a numba intrinsic: numba loads with the
    # first compiled kernel, not with ``import capture``
    if name == "prefetch":
        from capture._prefetch import prefetch  # noqa: PLC0415

        return prefetch
    if name in ("read_record", "stream_ahead"):  # the pcap walk's steps, for walks that do more
        from capture import _recwalk  # noqa: PLC0415

        return getattr(_recwalk, name)
    if name in ("ring_frame", "ring_ahead"):  # the ring walk's steps, for walks that do more
        from capture import _ringwalk  # noqa: PLC0415

        return getattr(_ringwalk, name)
    if name == "load_le64":  # an unaligned 8-byte read, for compiled loops
        from capture._load64 import load_le64  # noqa: PLC0415

        return load_le64
    if name == "unowned":  # an array's view without reference counting, for compiled loops
        from capture._unowned import unowned  # noqa: PLC0415

        return unowned
    raise AttributeError(f"module 'capture' has no attribute {name!r}")
