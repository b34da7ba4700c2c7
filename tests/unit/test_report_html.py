"""The HTML report in a real headless Chromium: self-contained, charts drawn, pod names shown."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from exporters import Window, build_report, records_frame, render
from tests.unit.test_report import records

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium (bootstrap installs it)"
)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    # --no-sandbox: the suite runs as root, where Chromium refuses its sandbox
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = build_report(records_frame(records()), Window(), "unit test records")
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render(report, "html", "pod"), encoding="utf-8")
    return path


def test_html_fetches_nothing_from_the_network(page: Path) -> None:
    """No script, stylesheet or image is loaded from a URL: the page opens air-gapped."""
    text = page.read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", text)
    assert "plotly" in text.lower()


def test_html_renders_charts_and_pod_names_in_chromium(page: Path) -> None:
    """Chromium's DOM after the scripts ran holds four plotly SVG charts and the pod names."""
    dom = chromium("--dump-dom", page.as_uri()).stdout
    for div in ("chart-bytes", "chart-pairs", "chart-protocols", "chart-rtt"):
        block = dom[dom.index(f'id="{div}"') :][:20000]
        assert "main-svg" in block, f"{div} was not drawn"
    assert "shop/web-1" in dom
    assert "db-0" in dom
    assert "unit test records" in dom


def test_html_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    """A screenshot of the page has many non-white pixels of several colours (charts drawn)."""
    from PIL import Image  # noqa: PLC0415 - only this test reads a PNG

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    non_white = (pixels.sum(axis=2) < 3 * 250).mean()
    colours = len(np.unique(pixels.reshape(-1, 3) // 32, axis=0))
    assert non_white > 0.05
    assert colours > 10
