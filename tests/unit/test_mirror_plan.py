"""Mirror planning on hand-built OVSDB snapshots: ownership, selection, coexistence."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from mirrorctl.ovs._errors import NotFoundError, UsageError
from mirrorctl.ovs._mirrors import plan_mirror, recorded_spec, require_selection, spec_from_args
from mirrorctl.ovs._ovsdb import BridgeRow, InterfaceRow, MirrorRow, PortRow, Snapshot
from mirrorctl.ovs._pods import PodRef
from mirrorctl.ovs._spec import MirrorSpec, Owner, owner_of


class Builder:
    """Lays out a bridge the way Kube-OVN does: pod ports with iface external_ids, ovn0."""

    def __init__(self) -> None:
        self.ports: dict[UUID, PortRow] = {}
        self.ifaces: dict[UUID, InterfaceRow] = {}
        self.mirrors: dict[UUID, MirrorRow] = {}
        self.bridge_ports: set[UUID] = set()

    def port(self, name: str, external_ids: dict[str, str] | None = None) -> UUID:
        iface = InterfaceRow(uuid4(), name, "", external_ids or {}, 1, "")
        port = PortRow(uuid4(), name, (iface.uuid,))
        self.ifaces[iface.uuid] = iface
        self.ports[port.uuid] = port
        self.bridge_ports.add(port.uuid)
        return port.uuid

    def pod(self, namespace: str, name: str, ip: str = "10.16.0.5") -> UUID:
        ids = {
            "iface-id": f"{name}.{namespace}",
            "pod_name": name,
            "pod_namespace": namespace,
            "ip": ip,
            "vendor": "kube-ovn",
        }
        return self.port(f"{abs(hash(name)) % 10**12:012d}_h", ids)

    def mirror(self, name: str, **kw: object) -> MirrorRow:
        row = MirrorRow(
            uuid=uuid4(),
            name=name,
            select_all=bool(kw.get("select_all", False)),
            select_src_port=frozenset(kw.get("src", ())),  # type: ignore[call-overload]
            select_dst_port=frozenset(kw.get("dst", ())),  # type: ignore[call-overload]
            output_port=kw.get("output"),  # type: ignore[arg-type]
            external_ids=kw.get("external_ids", {}),  # type: ignore[arg-type]
            statistics={},
        )
        self.mirrors[row.uuid] = row
        return row

    def snapshot(self) -> Snapshot:
        br = BridgeRow(uuid4(), "br-int", frozenset(self.bridge_ports), frozenset(self.mirrors))
        return Snapshot({"br-int": br}, self.ports, self.ifaces, self.mirrors, 1)


@pytest.fixture
def node() -> Builder:
    b = Builder()
    b.port("ovn0", {"iface-id": "node-kind-worker", "ip": "100.64.0.2"})
    b.pod("shop", "frontend")
    b.pod("shop", "cart")
    b.pod("default", "client")
    return b


def test_global_without_output_port_creates_internal_port_and_mirror(node: Builder) -> None:
    """No mirror0 link and no port: plan an internal port plus our select_all mirror."""
    plan = plan_mirror(node.snapshot(), MirrorSpec(select_all=True))
    assert plan.create_port
    assert plan.internal
    assert plan.want_row
    assert plan.row is None
    assert plan.select_all
    assert plan.changes


def test_existing_link_becomes_plain_port(node: Builder) -> None:
    """A mirror0 NIC that exists is added as a plain port, as kube-ovn-cni does."""
    plan = plan_mirror(node.snapshot(), MirrorSpec(select_all=True), output_link_exists=True)
    assert plan.create_port
    assert not plan.internal


def test_pod_selection_is_both_directions_and_only_that_pod(node: Builder) -> None:
    """A pod selection puts exactly the pod's port in select_src_port and select_dst_port."""
    plan = plan_mirror(node.snapshot(), MirrorSpec(pods=frozenset({PodRef("shop", "cart")})))
    assert [str(p.pod) for p in plan.selected] == ["shop/cart"]
    assert not plan.select_all
    assert plan.port_uuids == {plan.selected[0].port_uuid}


def test_namespace_selection_takes_every_pod_of_it(node: Builder) -> None:
    """--namespace shop selects both shop pods and nothing from default."""
    plan = plan_mirror(node.snapshot(), MirrorSpec(namespaces=frozenset({"shop"})))
    assert sorted(str(p.pod) for p in plan.selected) == ["shop/cart", "shop/frontend"]


def test_current_row_needs_no_change(node: Builder) -> None:
    """A row that already matches the spec plans no write (the keeper stays quiet)."""
    out = node.port("mirror0")
    spec = MirrorSpec(select_all=True)
    node.mirror(
        "mirrorscope-mirror0",
        select_all=True,
        output=out,
        external_ids=spec.to_external_ids("mirror0"),
    )
    plan = plan_mirror(node.snapshot(), spec)
    assert plan.row is not None
    assert plan.row_is_current
    assert not plan.changes


def test_foreign_select_all_to_same_output_covers_global(node: Builder) -> None:
    """Kube-OVN's m0 already sends everything to mirror0: no row of ours, the plan says who."""
    out = node.port("mirror0")
    node.mirror("m0", select_all=True, output=out)
    plan = plan_mirror(node.snapshot(), MirrorSpec(select_all=True))
    assert plan.covered_by == "m0"
    assert not plan.want_row
    assert not plan.changes


def test_foreign_rows_are_never_planned_for_removal(node: Builder) -> None:
    """Disabling everything removes our row only; m0 and OVN's row are left alone."""
    out = node.port("mirror0")
    m0 = node.mirror("m0", output=out)
    ovn = node.mirror("ovn-mirror", output=out, external_ids={"ovn-owned": "true"})
    ours = node.mirror(
        "mirrorscope-mirror0",
        select_all=True,
        output=out,
        external_ids=MirrorSpec(select_all=True).to_external_ids("mirror0"),
    )
    plan = plan_mirror(node.snapshot(), MirrorSpec())
    assert plan.remove == (ours.uuid,)
    assert m0.uuid not in plan.remove
    assert ovn.uuid not in plan.remove


def test_owner_classification() -> None:
    """m0 without external_ids is Kube-OVN's, ovn-owned is OVN's, our mark is ours."""
    b = Builder()
    assert owner_of(b.mirror("m0")) is Owner.KUBE_OVN
    assert owner_of(b.mirror("x", external_ids={"ovn-owned": "true"})) is Owner.OVN
    mine = b.mirror("y", external_ids=MirrorSpec(select_all=True).to_external_ids("mirror0"))
    assert owner_of(mine) is Owner.MIRRORCTL
    assert owner_of(b.mirror("m0", external_ids={"k": "v"})) is Owner.UNKNOWN


def test_intent_round_trips_through_external_ids(node: Builder) -> None:
    """What enable records on the row is what watch and status read back."""
    spec = MirrorSpec(True, frozenset({PodRef("shop", "cart")}), frozenset({"default"}))
    node.mirror("mirrorscope-mirror0", external_ids=spec.to_external_ids("mirror0"))
    assert recorded_spec(node.snapshot(), "br-int", "mirror0") == spec
    assert recorded_spec(node.snapshot(), "br-int", "other0") is None


def test_spec_arithmetic_undoes_exactly_what_is_named() -> None:
    """disable --pod removes that pod and keeps global and namespaces."""
    a, b = PodRef("shop", "cart"), PodRef("shop", "frontend")
    spec = MirrorSpec(True, frozenset({a, b}), frozenset({"default"}))
    left = spec - MirrorSpec(pods=frozenset({a}))
    assert left == MirrorSpec(True, frozenset({b}), frozenset({"default"}))
    assert not (MirrorSpec(select_all=True) - MirrorSpec(select_all=True))


def test_unknown_pod_or_bridge_is_not_found(node: Builder) -> None:
    """A typo in a pod, namespace or bridge is a NotFoundError naming what exists."""
    with pytest.raises(
        NotFoundError, match=r"pod shop/nope.*namespaces with pods here: default, shop"
    ):
        require_selection(
            node.snapshot(), MirrorSpec(pods=frozenset({PodRef("shop", "nope")})), "br-int"
        )
    with pytest.raises(NotFoundError, match="bridge 'br-ex' not found"):
        plan_mirror(node.snapshot(), MirrorSpec(select_all=True), bridge="br-ex")


def test_malformed_pod_argument_is_a_usage_error() -> None:
    """--pod must be NS/NAME."""
    with pytest.raises(UsageError, match="NAMESPACE/NAME"):
        spec_from_args(False, ["justaname"], [])
