"""Whether an assembly's sinks keep frames past a batch, which decides if its ring is copied."""

from __future__ import annotations

from pathlib import Path

from analyzers import IdentityMap
from exporters import StoreConfig
from mirrorctl.service._assemble import Outputs, assemble


def test_an_assembly_without_a_pcap_store_keeps_no_frames(tmp_path: Path) -> None:
    """Records, metrics and the caller's sinks take flows, never frames: the live source may
    hand out views of its ring."""
    assembly = assemble(IdentityMap(), Outputs(records_dir=tmp_path, metrics=True))
    try:
        assert not assembly.keeps_frames
    finally:
        assembly.close()


def test_an_assembly_with_a_pcap_store_keeps_frames(tmp_path: Path) -> None:
    """The store's writer thread packs a batch's frames after the batch: its source must copy
    each ring block out."""
    config = StoreConfig(directory=tmp_path, node="node1", min_free_bytes=0)
    assembly = assemble(IdentityMap(), Outputs(pcap=config))
    try:
        assert assembly.keeps_frames
    finally:
        assembly.close()
