"""The Dockerfile's Python part, built the way the Dockerfile builds it, in a fresh venv.

No container runtime or registry is needed: the build stage's COPY lines say which sources go into
/src and its RUN line how they are installed; the test copies exactly those, runs that install
(offline: --no-deps, dependencies from the running environment) and runs the image's ENTRYPOINT.
A package left out of the COPY lines, or package data missing from the wheel, fails here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, joined = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        joined += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(joined.strip())
            joined = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_the_runtime_stage_runs_mirrorctl_as_a_non_root_user() -> None:
    """The final image copies only the built venv, runs as uid 65532 and starts `capture run`."""
    final = dict(_stages()[-1])
    assert final["COPY"] == "--from=build /opt/mirrorscope /opt/mirrorscope"
    assert final["USER"] == "65532:65532"
    assert json.loads(final["ENTRYPOINT"]) == ["mirrorctl"]
    assert json.loads(final["CMD"]) == ["capture", "run"]
    # capture/_bpf.py loads libpcap.so.0.8 for --filter.
    assert "libpcap0.8" in final["RUN"]


@pytest.mark.timeout(180)
def test_the_build_stage_installs_a_working_mirrorctl(tmp_path: Path) -> None:
    """The build stage's COPY + pip install, replayed: the console script and its data work."""
    major, minor, *_ = version("setuptools").split(".")
    if (int(major), int(minor)) < (77, 0):
        pytest.skip("setuptools < 77 cannot build this project without isolation")
    build = _stages()[0]
    src = tmp_path / "src"
    src.mkdir()
    for instruction, args in build:
        if instruction != "COPY":
            continue
        *sources, dest = shlex.split(args)
        assert dest.startswith("/src"), args
        for source in sources:
            target = src / Path(dest).relative_to("/src") if not dest.endswith("/") else src
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target / path.name if dest.endswith("/") else target)
    run = next(args for instruction, args in build if instruction == "RUN")
    venv_cmd, install_cmd = (shlex.split(part) for part in run.split("&&"))
    assert venv_cmd[1:] == ["-m", "venv", "/opt/mirrorscope"]
    assert install_cmd[:2] == ["/opt/mirrorscope/bin/pip", "install"]
    assert install_cmd[2:] == ["/src"]

    venv = tmp_path / "opt-mirrorscope"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    installed = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (purelib / "_running_env.pth").write_text("\n".join(installed) + "\n", encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith("MIRRORSCOPE_")
    }
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
        check=True, env=env, cwd=tmp_path, capture_output=True,
    )  # fmt: skip
    final = dict(_stages()[-1])
    entry = venv / "bin" / json.loads(final["ENTRYPOINT"])[0]
    helped = subprocess.run(
        [entry, *json.loads(final["CMD"]), "--help"], check=True, env=env, cwd=tmp_path,
        capture_output=True, text=True,
    )  # fmt: skip
    assert "--keep-mirror" in helped.stdout
    check = (
        "import json; from importlib.resources import files; import mirrorctl, exporters; "
        "print(json.dumps([mirrorctl.__file__, "
        "json.loads(files('exporters').joinpath('dashboards/mirrorscope.json').read_text())['uid']]))"
    )
    out = subprocess.run(
        [python, "-c", check], check=True, env=env, cwd=tmp_path, capture_output=True, text=True
    )
    where, uid = json.loads(out.stdout)
    assert Path(where).is_relative_to(purelib)
    assert uid == "mirrorscope"
