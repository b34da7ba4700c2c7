"""Capture: read frames from the mirror NIC (AF_PACKET, TPACKET_V3) or pcap files, in batches."""

from capture._batch import FrameBatch
from capture._errors import CaptureError
from capture._protocols import BatchSink, FrameSource, SourceStats

__all__ = ["BatchSink", "CaptureError", "FrameBatch", "FrameSource", "SourceStats"]
