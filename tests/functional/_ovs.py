"""ovs-vsctl as an independent observer of a lab's OVSDB (the package itself never uses it)."""

from __future__ import annotations

import subprocess
import time

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
    """Leave the lab's bridge with no mirror and no mirror0 port, whatever a test did, and wait
    until ovs-vswitchd has applied that and the kernel has removed the TAP: a next test that
    creates mirror0 again at once could otherwise race the old device's removal (seen: the new
    internal port then stays without its TAP for more than 5 s)."""
    vsctl(
        state,
        "clear", "bridge", state.bridge, "mirrors",
        "--", "--if-exists", "del-port", "mirror0",
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = subprocess.run(
            ["ip", "-n", state.node_netns, "link", "show", "mirror0"],
            capture_output=True,
            check=False,
        )
        if shown.returncode != 0:
            return
        time.sleep(0.05)
