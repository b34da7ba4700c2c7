"""The capture worker's allocator settings (glibc's mmap and trim thresholds)."""

from __future__ import annotations

import platform

import pytest

from mirrorctl.service._malloc import reuse_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_thresholds() -> None:
    """Under glibc both thresholds are set (mallopt returns success for each)."""
    assert reuse_freed_memory()
