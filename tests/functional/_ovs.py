"""ovs-vsctl as an independent observer of a lab's OVSDB (the package itself never uses it)."""

from __future__ import annotations

import subprocess

from mirrorctl import LabState


def vsctl(state: LabState, *args: str) -> str:
    """Run ovs-vsctl against the lab's database; bounded so a dead ovs-vswitchd cannot hang a
    test (its own --timeout, and a hard one for the process)."""
    return subprocess.run(
        ["ovs-vsctl", f"--db={state.ovsdb}", "--timeout=10", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout.strip()


def remove_mirrors_and_mirror0(state: LabState) -> None:
    """Leave the lab's bridge with no mirror and no mirror0 port, whatever a test did."""
    vsctl(
        state,
        "--no-wait",
        "clear", "bridge", state.bridge, "mirrors",
        "--", "--if-exists", "del-port", "mirror0",
    )  # fmt: skip
