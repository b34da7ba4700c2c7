"""Pods from Interface external_ids, the live pod directory, endpoints, and status rendering."""

from __future__ import annotations

import json

import pytest

from analyzers._identity import EndpointKind, IdentityMap
from mirrorctl.ovs._errors import UsageError
from mirrorctl.ovs._links import LinkState
from mirrorctl.ovs._ovsdb import DEFAULT_ENDPOINT, parse_endpoint, resolve_endpoint
from mirrorctl.ovs._pods import PodDirectory, PodRef, identity_entries, pod_of
from mirrorctl.ovs._spec import MirrorSpec
from mirrorctl.ovs._status import collect_status, format_status, status_json
from tests.unit.test_mirror_plan import Builder


def test_pod_from_kube_ovn_keys_and_from_iface_id() -> None:
    """pod_name/pod_namespace win; iface-id <pod>.<ns> is the fallback; node- is no pod."""
    assert pod_of({"pod_name": "a.b", "pod_namespace": "ns", "iface-id": "x.y"}) == PodRef(
        "ns", "a.b"
    )
    assert pod_of({"iface-id": "web.v1.shop"}) == PodRef("shop", "web.v1")
    assert pod_of({"iface-id": "node-worker1"}) is None
    assert pod_of({}) is None


def test_identity_entries_cover_dual_stack_pods_and_the_node() -> None:
    """Each pod IP maps to the pod with this OVSDB's node; ovn0's join IP maps to the node."""
    b = Builder()
    b.port("ovn0", {"iface-id": "node-kind-worker", "ip": "100.64.0.2"})
    b.pod("shop", "cart", ip="10.16.0.7,fd00:10:16::7")
    b.port("junk_h", {"iface-id": "p.ns", "ip": "not-an-ip,10.16.0.9"})
    entries = dict(identity_entries(b.snapshot()))
    assert entries["10.16.0.7"].label == "shop/cart"
    assert entries["fd00:10:16::7"].node == "kind-worker"
    assert entries["100.64.0.2"].kind is EndpointKind.NODE
    assert entries["10.16.0.9"].label == "ns/p"
    assert len(entries) == 4


def test_pod_directory_replaces_only_on_change() -> None:
    """The directory feeds IdentityMap source 'ovsdb' and skips identical refreshes."""
    b = Builder()
    b.pod("shop", "cart", ip="10.16.0.7")
    identity = IdentityMap()
    directory = PodDirectory(identity)
    assert directory.update(b.snapshot())
    assert not directory.update(b.snapshot())
    assert identity.lookup("10.16.0.7").pod == "cart"
    assert identity.generation == 1
    b.pod("shop", "frontend", ip="10.16.0.8")
    assert directory.update(b.snapshot())
    assert identity.lookup("10.16.0.8").pod == "frontend"


@pytest.mark.parametrize("text", ["unix:relative", "tcp:host", "tcp:h:99999", "ssl:h:1", ""])
def test_bad_endpoints_are_usage_errors(text: str) -> None:
    """Only unix:/abs/path and tcp:HOST:PORT are accepted."""
    with pytest.raises(UsageError, match="invalid OVSDB endpoint"):
        parse_endpoint(text)


def test_endpoint_precedence() -> None:
    """Flag beats MIRRORSCOPE_OVSDB beats Kube-OVN's default socket."""
    env = {"MIRRORSCOPE_OVSDB": "tcp:127.0.0.1:6640"}
    assert resolve_endpoint("unix:/x.sock", env) == "unix:/x.sock"
    assert resolve_endpoint(None, env) == "tcp:127.0.0.1:6640"
    assert resolve_endpoint(None, {}) == DEFAULT_ENDPOINT


def test_status_names_pods_and_keeps_stable_json_keys() -> None:
    """Status shows pods by namespace/name, owners, counters, and the link, in both forms."""
    b = Builder()
    cart = b.pod("shop", "cart")
    out = b.port("mirror0")
    b.mirror("m0", output=out)
    spec = MirrorSpec(pods=frozenset({PodRef("shop", "cart")}))
    b.mirror(
        "mirrorscope-mirror0",
        src=[cart],
        dst=[cart],
        output=out,
        external_ids=spec.to_external_ids("mirror0"),
    )
    link = LinkState("mirror0", "node", 4, True, "UNKNOWN", 1, 2, 3, 4, 0, 0)
    status = collect_status(
        b.snapshot(), endpoint="unix:/s", bridge="br-int", netns="node", read_link=lambda *_: link
    )
    doc = json.loads(json.dumps(status_json(status)))
    assert set(doc) == {"version", "ovsdb", "bridge", "netns", "mirrors", "pods"}
    ours = next(m for m in doc["mirrors"] if m["owner"] == "mirrorctl")
    assert ours["select_src"] == [{"port": ours["select_src"][0]["port"], "pod": "shop/cart"}]
    assert ours["intent"] == {"global": False, "pods": ["shop/cart"], "namespaces": []}
    assert ours["output_link"]["up"] is True
    assert ours["statistics"] == {
        "tx_packets": None,
        "tx_bytes": None,
    }
    assert [m["owner"] for m in doc["mirrors"]] == ["kube-ovn", "mirrorctl"]
    text = format_status(status)
    assert "from pods: shop/cart" in text
    assert "owner kube-ovn" in text


def test_status_shows_kube_ovn_pod_mirroring_misses_what_the_pod_sends() -> None:
    """Per pod and direction, status names the mirrors copying its traffic: Kube-OVN's
    pod-level m0 (select_dst_port only) covers traffic to the pod, not from it."""
    b = Builder()
    cart = b.pod("shop", "cart", ip="10.16.0.7,fd00:10:16::7")
    b.pod("default", "client")
    out = b.port("mirror0")
    b.mirror("m0", dst=[cart], output=out)
    status = collect_status(
        b.snapshot(), endpoint="unix:/s", bridge="br-int", read_link=lambda *_: None
    )
    doc = status_json(status)
    by_pod = {p["pod"]: p for p in doc["pods"]}
    assert by_pod["shop/cart"]["mirrored_to_pod"] == ["m0"]
    assert by_pod["shop/cart"]["mirrored_from_pod"] == []
    assert by_pod["shop/cart"]["ips"] == ["10.16.0.7", "fd00:10:16::7"]
    assert by_pod["default/client"]["mirrored_to_pod"] == []
    text = format_status(status)
    cart_line = next(line for line in text.splitlines() if line.startswith("  shop/cart "))
    assert cart_line.split()[-2:] == ["-", "m0"]
