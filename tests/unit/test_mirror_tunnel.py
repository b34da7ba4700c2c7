"""Remote mirrors: the GRE/ERSPAN port a mirror outputs to, planned on hand-built snapshots."""

from __future__ import annotations

from uuid import uuid4

import pytest

from mirrorctl.ovs._errors import UsageError
from mirrorctl.ovs._mirrors import plan_mirror
from mirrorctl.ovs._ovsdb import InterfaceRow, PortRow
from mirrorctl.ovs._spec import MirrorSpec
from mirrorctl.ovs._status import collect_status, format_status, status_json
from mirrorctl.ovs._tunnels import TUNNEL_KEY, TunnelKind, TunnelSpec, tunnel_from_args
from tests.unit.test_mirror_plan import Builder

GRE = TunnelSpec(TunnelKind.GRE, "10.250.0.2", 7)


def tunnel_port(b: Builder, name: str, type_: str, options: dict[str, str]) -> None:
    iface = InterfaceRow(uuid4(), name, type_, {}, 5, "", options=options)
    port = PortRow(uuid4(), name, (iface.uuid,))
    b.ifaces[iface.uuid] = iface
    b.ports[port.uuid] = port
    b.bridge_ports.add(port.uuid)


def test_gre_options_carry_remote_and_key() -> None:
    """A GRE tunnel is remote_ip and key, nothing ERSPAN-only."""
    spec = tunnel_from_args("gre", "10.250.0.2", key=7)
    assert spec.options() == {"remote_ip": "10.250.0.2", "key": "7"}
    assert spec.default_port == "gre-mirror"
    assert spec.describe() == "gre remote_ip=10.250.0.2 key=7"


def test_erspan_type_ii_and_iii_options() -> None:
    """erspan_ver 1 (type II) carries the port index, 2 (type III) direction and hardware id."""
    v1 = tunnel_from_args("erspan", "10.250.0.2", key=11, erspan_idx=7)
    assert v1.options() == {
        "remote_ip": "10.250.0.2",
        "key": "11",
        "erspan_ver": "1",
        "erspan_idx": "7",
    }
    v2 = tunnel_from_args("erspan", "10.250.0.2", key=12, erspan_ver=2, erspan_dir=1, erspan_hwid=4)
    assert v2.options() == {
        "remote_ip": "10.250.0.2",
        "key": "12",
        "erspan_ver": "2",
        "erspan_dir": "1",
        "erspan_hwid": "4",
    }


@pytest.mark.parametrize(
    ("kind", "remote", "kwargs", "message"),
    [
        ("vxlan", "10.0.0.1", {}, "gre or erspan"),
        ("gre", None, {}, "needs --remote-ip"),
        ("gre", "collector", {}, "not an IP address"),
        ("gre", "fd00::1", {}, "must be IPv4"),
        ("gre", "10.0.0.1", {"erspan_ver": 1}, "need --output-tunnel erspan"),
        ("erspan", "10.0.0.1", {"key": 1024}, "session id"),
        ("erspan", "10.0.0.1", {"erspan_ver": 3}, "must be 1"),
        ("erspan", "10.0.0.1", {"erspan_dir": 1}, "add --erspan-ver 2"),
        ("erspan", "10.0.0.1", {"erspan_ver": 2, "erspan_idx": 3}, "type II"),
        ("erspan", "10.0.0.1", {"erspan_ver": 2, "erspan_hwid": 64}, "--erspan-hwid"),
    ],
)
def test_tunnel_arguments_ovs_would_refuse_are_usage_errors(
    kind: str, remote: str | None, kwargs: dict[str, int], message: str
) -> None:
    """Each CLI combination OVS would reject or silently ignore is refused with a hint."""
    with pytest.raises(UsageError, match=message):
        tunnel_from_args(kind, remote, **kwargs)


def test_tunnel_output_plans_a_tunnel_port_and_records_it() -> None:
    """No port yet: plan a GRE port (no kernel link to wait for) and note the tunnel on the row."""
    b = Builder()
    b.pod("shop", "cart")
    plan = plan_mirror(b.snapshot(), MirrorSpec(select_all=True), output="gre-mirror", tunnel=GRE)
    assert plan.create_port
    assert plan.tunnel == GRE
    assert not plan.output_is_link
    assert plan.external_ids[TUNNEL_KEY] == "gre remote_ip=10.250.0.2 key=7"


def test_tunnel_port_with_other_options_is_retuned_in_place() -> None:
    """An existing port with another key is updated (type and options), not duplicated."""
    b = Builder()
    tunnel_port(b, "gre-mirror", "gre", {"remote_ip": "10.250.0.2", "key": "8"})
    plan = plan_mirror(b.snapshot(), MirrorSpec(select_all=True), output="gre-mirror", tunnel=GRE)
    assert not plan.create_port
    assert plan.retune is not None
    assert plan.changes


def test_a_port_that_is_no_tunnel_is_never_turned_into_one() -> None:
    """--output-tunnel with --iface naming mirror0 (internal) is refused, not retyped."""
    b = Builder()
    tunnel_port(b, "mirror0", "internal", {})
    with pytest.raises(UsageError, match="mirror0 on br-int is not a tunnel"):
        plan_mirror(b.snapshot(), MirrorSpec(select_all=True), output="mirror0", tunnel=GRE)


def test_current_tunnel_mirror_plans_nothing() -> None:
    """Port and row already as asked: no write (the keeper stays quiet)."""
    b = Builder()
    tunnel_port(b, "gre-mirror", "gre", GRE.options())
    spec = MirrorSpec(select_all=True)
    first = plan_mirror(b.snapshot(), spec, output="gre-mirror", tunnel=GRE)
    assert first.output_port is not None
    b.mirror(
        "mirrorscope-gre-mirror",
        select_all=True,
        output=first.output_port,
        external_ids=first.external_ids,
    )
    plan = plan_mirror(b.snapshot(), spec, output="gre-mirror", tunnel=GRE)
    assert plan.retune is None
    assert not plan.changes


def test_existing_tunnel_port_is_not_a_link_without_the_tunnel_flags() -> None:
    """disable --iface gre-mirror (no tunnel flags) still knows the output is a tunnel port."""
    b = Builder()
    b.pod("shop", "cart")
    tunnel_port(b, "gre-mirror", "erspan", {"remote_ip": "10.250.0.2"})
    plan = plan_mirror(b.snapshot(), MirrorSpec(select_all=True), output="gre-mirror")
    assert not plan.output_is_link
    assert plan.retune is None


def test_status_shows_a_tunnel_output_instead_of_a_missing_link() -> None:
    """status names a tunnel output's type and options and never looks for a link for it."""
    b = Builder()
    tunnel_port(b, "gre-mirror", "gre", GRE.options())
    plan = plan_mirror(b.snapshot(), MirrorSpec(select_all=True), output="gre-mirror", tunnel=GRE)
    b.mirror("mirrorscope-gre-mirror", select_all=True, output=plan.output_port)
    looked: list[str] = []

    def read_link(name: str, _netns: str | None) -> None:
        looked.append(name)

    status = collect_status(b.snapshot(), endpoint="unix:/x", bridge="br-int", read_link=read_link)
    assert looked == []
    doc = status_json(status)["mirrors"][0]
    assert doc["output_tunnel"] == {"type": "gre", "options": GRE.options()}
    assert "tunnel:    gre key=7 remote_ip=10.250.0.2" in format_status(status)
