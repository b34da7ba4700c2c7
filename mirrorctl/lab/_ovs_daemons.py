"""A private Open vSwitch: ``ovsdb-server`` and ``ovs-vswitchd`` with every file in one run dir.

Both run inside the lab's node namespace, so the TAP devices of internal ports (br-int, ovn0,
mirror0) appear there and never collide with another lab or a real node's OVS.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from mirrorctl.lab import _daemons
from mirrorctl.lab._daemons import Daemon
from mirrorctl.lab._errors import LabError

log = logging.getLogger(__name__)

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
OVSDB_SERVER = "ovsdb-server"
OVS_VSWITCHD = "ovs-vswitchd"
# Files OVS writes into its run dir besides the ones we name on its command line.
GENERATED = (".conf.db.~lock~", "db.sock", "br-int.mgmt", "br-int.snoop")


def db_path(run_dir: Path) -> Path:
    return run_dir / "conf.db"


def socket_path(run_dir: Path) -> Path:
    return run_dir / "db.sock"


def daemon(run_dir: Path, name: str, netns: str | None = None) -> Daemon:
    return Daemon(name=name, pidfile=run_dir / f"{name}.pid", marker=f"{run_dir}/", netns=netns)


def ctl_path(run_dir: Path, name: str) -> Path:
    """The daemon's unixctl socket, for ``ovs-appctl --target``."""
    return run_dir / f"{name}.ctl"


def _common_args(run_dir: Path, name: str) -> list[str]:
    return [
        f"--pidfile={run_dir}/{name}.pid",
        f"--log-file={run_dir}/{name}.log",
        f"--unixctl={ctl_path(run_dir, name)}",
        "--detach",
        "--no-chdir",
        "-vconsole:off",
    ]


def _env(run_dir: Path) -> dict[str, str]:
    # ovs-vswitchd puts per-bridge sockets (br-int.mgmt, .snoop) in OVS_RUNDIR: keep them ours.
    return {"OVS_RUNDIR": str(run_dir), "OVS_LOGDIR": str(run_dir), "OVS_DBDIR": str(run_dir)}


def create_db(run_dir: Path) -> None:
    """Create the empty Open_vSwitch database unless it exists."""
    if db_path(run_dir).exists():
        return
    if not SCHEMA.exists():
        raise LabError(f"{SCHEMA} is missing: install openvswitch-switch (make bootstrap)")
    result = subprocess.run(
        ["ovsdb-tool", "create", str(db_path(run_dir)), str(SCHEMA)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"ovsdb-tool create failed: {result.stderr.strip()}")


def start_ovsdb_server(run_dir: Path, netns: str) -> int:
    create_db(run_dir)
    argv = [
        OVSDB_SERVER,
        str(db_path(run_dir)),
        f"--remote=punix:{socket_path(run_dir)}",
        *_common_args(run_dir, OVSDB_SERVER),
    ]
    return _daemons.start(
        daemon(run_dir, OVSDB_SERVER, netns),
        argv,
        netns=netns,
        env=_env(run_dir),
        log_file=run_dir / f"{OVSDB_SERVER}.log",
    )


def start_vswitchd(run_dir: Path, netns: str) -> int:
    argv = [OVS_VSWITCHD, f"unix:{socket_path(run_dir)}", *_common_args(run_dir, OVS_VSWITCHD)]
    return _daemons.start(
        daemon(run_dir, OVS_VSWITCHD, netns),
        argv,
        netns=netns,
        env=_env(run_dir),
        log_file=run_dir / f"{OVS_VSWITCHD}.log",
    )


def stop_all(run_dir: Path) -> None:
    """Stop ovs-vswitchd first, so it removes its TAP devices while OVSDB still answers."""
    _daemons.stop(daemon(run_dir, OVS_VSWITCHD))
    _daemons.stop(daemon(run_dir, OVSDB_SERVER))


def files(run_dir: Path) -> list[Path]:
    """Every file the two daemons may have left in ``run_dir``."""
    named = [
        run_dir / f"{name}.{ext}"
        for name in (OVSDB_SERVER, OVS_VSWITCHD)
        for ext in ("pid", "log", "ctl", "stderr")
    ]
    return [db_path(run_dir), *named, *(run_dir / g for g in GENERATED)]
