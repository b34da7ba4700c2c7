"""Which sinks "on + analysis" turns on: one list, extended by what the service accepts."""

from __future__ import annotations

from pathlib import Path

from mirrorctl.bench import _sinks


def test_every_sink_of_this_checkouts_service_is_on() -> None:
    """The flags name only options `capture run --help` lists, and always include the four
    sinks every checkout has: listener, token, records, IPFIX."""
    known = _sinks.capture_run_flags()
    flags, names = _sinks.sink_flags(Path("/o"), 4739, Path("/t"), known)
    options = [f for f in flags if f.startswith("--")]
    assert set(options) <= known
    assert {"--listen", "--token-file", "--records", "--ipfix"} <= set(options)
    assert "flow records" in names


def test_pcap_store_and_notices_join_when_the_service_has_them() -> None:
    """A service knowing --pcap-dir gets a store under the node's dir, with a bounded quota when
    it takes one; --no-notices means notices are on."""
    known = frozenset({"--pcap-dir", "--no-notices"})
    flags, names = _sinks.sink_flags(Path("/o"), 4739, Path("/t"), known)
    assert flags[-2:] == ["--pcap-dir", "/o/pcap"]
    flags, _ = _sinks.sink_flags(Path("/o"), 4739, Path("/t"), known | {"--pcap-quota"})
    assert flags[-4:] == ["--pcap-dir", "/o/pcap", "--pcap-quota", "256M"]
    assert names[-2:] == ["pcap store", "notices (on by default)"]
    flags, names = _sinks.sink_flags(Path("/o"), 4739, Path("/t"), frozenset())
    assert "--pcap-dir" not in flags
    assert "pcap store" not in names
