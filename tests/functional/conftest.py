"""Functional tier: real network namespaces, links and Open vSwitch. Needs root (CI is root)."""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mirrorctl import KubeOvnMirror, Lab, LabState
from mirrorctl.lab import read_state

log = logging.getLogger(__name__)

LabFactory = Callable[..., LabState]


def _functional(item: pytest.Item) -> bool:
    return "tests/functional" in str(item.fspath)


def _run_order(item: pytest.Item) -> int:
    """The benches, then the unit tier, then the rest of the functional tier.

    `make test` runs two xdist workers that take whole modules in this order. The benches come
    first as the longest modules, and while they keep both cores busy at line rate the other
    worker runs unit tests, which send no real traffic and wait on no lab: lab tests that expect
    packets within a second or drop counts of 0 are kept away from a saturated machine. The
    sort is stable.
    """
    if item.get_closest_marker("bench") is not None:
        return 0
    return 2 if _functional(item) else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _functional(item):
            item.add_marker(pytest.mark.root)
    items.sort(key=_run_order)


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the functional tier needs root: run `make test` as root (CI does)")


# Test labs live here rather than under pytest's tmp dirs: pytest deletes old tmp dirs after a
# few runs, and a lab whose pytest was killed would then lose the state needed to remove it.
TEST_LAB_ROOT = Path("/run/mirrorscope/test-labs")
OWNER_FILE = "owner.pid"


def _session_pid() -> int:
    """The pid of the pytest process that owns this session's labs.

    Under pytest-xdist that is the controller, not this worker: a worker's command line does not
    say pytest, so another session's reaper would take its labs for orphans.
    """
    return os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()


def _owner_alive(owner: Path) -> bool:
    try:
        pid = int(owner.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"pytest" in cmdline


@pytest.fixture(scope="session", autouse=True)
def _reap_orphaned_labs() -> None:
    """Bring down labs whose pytest was killed (timeout, SIGKILL) before its teardown ran.

    Each lab_factory lab has an owner.pid beside its run dir; a lab whose owner is gone would
    otherwise keep its ovs-vswitchd spinning for every later run on this machine.
    """
    for owner in TEST_LAB_ROOT.glob(f"*/{OWNER_FILE}"):
        if _owner_alive(owner):
            continue
        state = read_state(owner.parent / "run")
        if state is not None:
            log.warning("bringing down orphaned lab %s in %s", state.name, state.run_dir)
            try:
                Lab.of(state).down()
            except Exception:  # a broken leftover must not stop this session's tests
                log.exception("could not bring down orphaned lab %s", state.name)
                continue
        shutil.rmtree(owner.parent, ignore_errors=True)


def unique_lab_name(prefix: str = "t") -> str:
    """A lab name no other test run on this machine uses at the same time."""
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def lab_factory() -> Iterator[LabFactory]:
    """Build extra labs: ``lab_factory(pods=3, kube_ovn_mirror="global") -> LabState``
    (``collector=True``: with a remote-mirror collector namespace).

    Every lab gets a unique name and a run dir /run/mirrorscope/test-labs/<name>/run, and is
    brought down at the end of the session even when a test (or the lab's own ``up``) failed;
    if the session itself is killed, the next session on this machine brings it down.
    """
    labs: list[Lab] = []

    def make(
        pods: int = 4,
        kube_ovn_mirror: KubeOvnMirror | str = KubeOvnMirror.NONE,
        rng: random.Random | None = None,
        collector: bool = False,
    ) -> LabState:
        """``rng``: two labs given generators seeded alike get the same pod names (one pod on
        two nodes), each in its own namespaces."""
        name = unique_lab_name()
        home = TEST_LAB_ROOT / name
        home.mkdir(parents=True)
        (home / OWNER_FILE).write_text(f"{_session_pid()}\n")
        run_dir = home / "run"
        lab = Lab(
            name, run_dir, pods=pods, kube_ovn_mirror=kube_ovn_mirror, rng=rng, collector=collector
        )
        labs.append(lab)  # before up(): a half-built lab is torn down too
        return lab.up()

    yield make
    for lab in reversed(labs):
        try:
            lab.down()
        except Exception:  # one lab's broken teardown must not leave the others up
            log.exception("tearing down lab %s failed", lab.name)
        else:
            shutil.rmtree(lab.run_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(lab_factory: LabFactory) -> LabState:
    """The shared lab: 4 pods in namespaces shop, kube-system and default, no mirror of its own.

    Tests that add mirrors or ports must remove them again, or use ``lab_factory`` for a lab
    of their own.
    """
    return lab_factory()


from tests.functional._prometheus import prometheus  # noqa: E402, F401 - fixture for the scrape tests
from tests.functional._veth import sender, veth  # noqa: E402, F401 - fixtures for the capture tests
