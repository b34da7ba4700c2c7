"""A non-editable install: the console script, the public API and the dashboard from the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: PEP 639's ``license = "Apache-2.0"`` needs this setuptools to build without isolation.
SETUPTOOLS_MIN = (77, 0)

CHECK = """
import json, sys
from importlib.resources import files
import analyzers, capture, exporters, mirrorctl
from mirrorctl import MirrorscopeError, Pipeline, analyse_pcap, live_capture
dashboard = json.loads(files("exporters").joinpath("dashboards/mirrorscope.json").read_text())
print(json.dumps({"uid": dashboard["uid"], "files": [m.__file__ for m in
    (analyzers, capture, exporters, mirrorctl)]}))
"""


def _setuptools() -> tuple[int, int]:
    major, minor, *_ = version("setuptools").split(".")
    return int(major), int(minor)


@pytest.mark.timeout(120)
def test_pip_install_dot_gives_a_working_mirrorctl_with_its_dashboard(tmp_path: Path) -> None:
    """``pip install .`` (not editable) into a clean venv: --help, the API and package data."""
    if _setuptools() < SETUPTOOLS_MIN:
        pytest.skip(
            f"setuptools {version('setuptools')} < 77 cannot build this project without "
            "isolation: run make bootstrap (the dev extra pins setuptools>=77)"
        )
    src = tmp_path / "src"
    # A copy: building in the checkout would leave build/ and *.egg-info behind.
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info",
                                                 "build", "bench-out", ".*_cache")
    )  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    # The dependencies (and pip, setuptools) come from the running environment: no network.
    # A .pth appends these after the venv's own site-packages, which therefore wins.
    installed = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (purelib / "_running_env.pth").write_text("\n".join(installed) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
        check=True, env=env, cwd=tmp_path, capture_output=True,
    )  # fmt: skip
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    helped = subprocess.run(
        [venv / "bin" / "mirrorctl", "--help"], check=True, env=env, cwd=outside,
        capture_output=True, text=True,
    )  # fmt: skip
    assert "capture" in helped.stdout
    plugin = subprocess.run(
        [venv / "bin" / "kubectl-mirrorscope", "--help"], check=True, env=env, cwd=outside,
        capture_output=True, text=True,
    )  # fmt: skip  # on PATH beside mirrorctl: kubectl finds it as `kubectl mirrorscope`
    assert "kubectl mirrorscope" in plugin.stdout
    checked = subprocess.run(
        [python, "-c", CHECK], check=True, env=env, cwd=outside, capture_output=True, text=True
    )
    found = json.loads(checked.stdout)
    assert found["uid"] == "mirrorscope"
    assert all(Path(f).is_relative_to(purelib) for f in found["files"]), found["files"]
