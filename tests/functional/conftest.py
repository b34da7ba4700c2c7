"""Functional tier: real network namespaces, links and Open vSwitch. Needs root (CI is root)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from mirrorctl import KubeOvnMirror, Lab, LabState

log = logging.getLogger(__name__)

LabFactory = Callable[..., LabState]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/functional" in str(item.fspath):
            item.add_marker(pytest.mark.root)


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the functional tier needs root: run `make test` as root (CI does)")


def unique_lab_name(prefix: str = "t") -> str:
    """A lab name no other test run on this machine uses at the same time."""
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """Build extra labs: ``lab_factory(pods=3, kube_ovn_mirror="global") -> LabState``.

    Every lab gets a unique name and a run dir under pytest's tmp dir, and is brought down at
    the end of the session even when a test (or the lab's own ``up``) failed.
    """
    labs: list[Lab] = []

    def make(pods: int = 4, kube_ovn_mirror: KubeOvnMirror | str = KubeOvnMirror.NONE) -> LabState:
        name = unique_lab_name()
        run_dir = tmp_path_factory.mktemp(f"lab-{name}") / "run"
        lab = Lab(name, run_dir, pods=pods, kube_ovn_mirror=kube_ovn_mirror)
        labs.append(lab)  # before up(): a half-built lab is torn down too
        return lab.up()

    yield make
    for lab in reversed(labs):
        try:
            lab.down()
        except Exception:  # one lab's broken teardown must not leave the others up
            log.exception("tearing down lab %s failed", lab.name)


@pytest.fixture(scope="session")
def lab(lab_factory: LabFactory) -> LabState:
    """The shared lab: 4 pods in namespaces shop, kube-system and default, no mirror of its own.

    Tests that add mirrors or ports must remove them again, or use ``lab_factory`` for a lab
    of their own.
    """
    return lab_factory()


from tests.functional._prometheus import prometheus  # noqa: E402, F401 - fixture for the scrape tests
