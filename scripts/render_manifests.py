"""Write deploy/manifests/ from the Helm chart, so the plain manifests never drift from it.

    python scripts/render_manifests.py        # needs the dev extra (helm-python-sdk)

The manifests are the chart with its defaults in namespace ``mirrorscope``, except that the token
Secret is created by hand (a committed file must not carry a token):
``kubectl -n mirrorscope create secret generic mirrorscope-token --from-literal=token=...``.
tests/unit/test_deploy.py fails when they are out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "mirrorscope"
OUT = ROOT / "deploy" / "manifests"
NAMESPACE = "mirrorscope"
VALUES: dict[str, Any] = {"token": {"existingSecret": "mirrorscope-token"}}
HEADER = "# Generated from deploy/helm/mirrorscope by scripts/render_manifests.py: do not edit.\n"
NAMESPACE_YAML = f"""{HEADER}apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
"""


def render() -> dict[str, str]:
    """File name -> content of every manifest, as the chart renders them."""
    import helm_python  # noqa: PLC0415 - a dev dependency, loaded only to render

    chart = helm_python.Chart.load(CHART)
    rendered = chart.render(VALUES, name="mirrorscope", namespace=NAMESPACE, is_install=True)
    files = {"00-namespace.yaml": NAMESPACE_YAML}
    for template, text in sorted(rendered.items()):
        if not text.strip() or not template.endswith(".yaml"):
            continue
        files[Path(template).name] = HEADER + text.strip() + "\n"
    return files


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    files = render()
    for stale in OUT.glob("*.yaml"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} manifests to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
