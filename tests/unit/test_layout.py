"""The package layout rules, read from the source: rooms, public names, cheap short commands."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("capture", "analyzers", "exporters", "mirrorctl", "bench")


def _library_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _package_of(path: Path) -> str:
    """Dotted package of a module file: ``mirrorctl/ovs/_x.py`` is in ``mirrorctl.ovs``."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every module or name an import reaches, dotted (relative imports resolved)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _private_owner(dotted: str) -> str | None:
    """The package whose private module ``dotted`` reaches, or None when it reaches none."""
    parts = dotted.split(".")
    if parts[0] not in PACKAGES:
        return None
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_no_library_module_imports_another_packages_private_module() -> None:
    """Library code reaches another (sub-)package only through its public ``__init__`` names."""
    offences = []
    for path in _library_modules():
        package = _package_of(path)
        for line, dotted in _imported(ast.parse(path.read_text(encoding="utf-8")), package):
            owner = _private_owner(dotted)
            if owner is not None and owner != package:
                offences.append(f"{path.relative_to(ROOT)}:{line}: {dotted}")
    assert offences == []


def test_the_rule_catches_a_private_import_across_packages() -> None:
    """The checker itself: a cross-package private import is found, a same-package one is not."""
    tree = ast.parse("from capture._batch import FrameBatch\nfrom analyzers import _dns\n")
    owners = [_private_owner(d) for _, d in _imported(tree, "analyzers")]
    assert owners == ["capture", "analyzers"]


def test_mirrorctl_holds_only_its_rooms() -> None:
    """No module sits directly in mirrorctl/ except its __init__: everything lives in a room."""
    loose = sorted(p.name for p in (ROOT / "mirrorctl").glob("*.py") if p.name != "__init__.py")
    rooms = sorted(p.name for p in (ROOT / "mirrorctl").iterdir() if (p / "__init__.py").exists())
    assert loose == []
    assert rooms == ["bench", "cli", "fleet", "kube", "lab", "ovs", "service"]


@pytest.mark.parametrize(
    "package",
    ["capture", "analyzers", "exporters", "mirrorctl", "mirrorctl.ovs", "mirrorctl.lab",
     "mirrorctl.service", "mirrorctl.cli", "mirrorctl.fleet", "mirrorctl.kube",
     "mirrorctl.bench"],
)  # fmt: skip
def test_every_public_name_resolves(package: str) -> None:
    """Each package's ``__all__`` names something real (a lazy map cannot point into the void)."""
    module = __import__(package, fromlist=["__all__"])
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_every_error_derives_from_the_one_root() -> None:
    """Capture's, the exporters', OVS control's and the lab's errors are one hierarchy."""
    import analyzers  # noqa: PLC0415
    import capture  # noqa: PLC0415
    import exporters  # noqa: PLC0415
    import mirrorctl  # noqa: PLC0415
    from mirrorctl import lab, ovs  # noqa: PLC0415

    root = capture.MirrorscopeError
    assert analyzers.MirrorscopeError is exporters.MirrorscopeError is mirrorctl.MirrorscopeError
    assert mirrorctl.MirrorscopeError is root
    for error in (
        capture.CaptureError,
        exporters.ExporterError,
        exporters.ListenError,
        ovs.MirrorError,
        ovs.UsageError,
        ovs.OVSDBUnreachableError,
        lab.LabError,
    ):
        assert issubclass(error, root), error
    assert ovs.OVSDBUnreachableError("unix:/x", "gone").exit_code == 3


HEAVY = ("ovsdbapp", "pyroute2", "fastapi", "starlette", "pydantic", "uvicorn")


def test_capture_read_imports_no_ovsdb_netlink_or_web_library() -> None:
    """Building the CLI and loading ``capture read`` costs no OVSDB, netlink or web framework
    library: the listener's FastAPI, pydantic and uvicorn load only when the service serves."""
    code = (
        "import sys\n"
        "from mirrorctl.cli import build_parser\n"
        "from mirrorctl import service\n"
        "import exporters\n"
        "build_parser(); service.read_files; exporters.DEFAULT_LISTEN\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
