"""Capture: read frames from the mirror NIC (AF_PACKET, TPACKET_V3) or pcap files, in batches."""

from capture._afpacket import AfPacketSource
from capture._batch import FrameBatch
from capture._errors import CaptureError
from capture._pcapfile import CorruptCaptureFileError, PcapFileSource, open_capture_file
from capture._pcapwriter import PcapWriter
from capture._protocols import BatchSink, FrameSource, SourceStats

__all__ = [
    "AfPacketSource",
    "BatchSink",
    "CaptureError",
    "CorruptCaptureFileError",
    "FrameBatch",
    "FrameSource",
    "PcapFileSource",
    "PcapWriter",
    "SourceStats",
    "open_capture_file",
]
