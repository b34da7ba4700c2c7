"""`capture run`'s metrics flags: parsed into the exporter's config, bad values one clear line."""

from __future__ import annotations

import pytest

from exporters import CardinalityConfig, MetricsConfig
from mirrorctl.cli import build_parser, main
from mirrorctl.service._config import _metrics_config


def test_flags_reach_cardinality_and_metrics_config() -> None:
    """--metrics-top-k/-max-series/-grace-s and --coverage-window-s set the exporter's config."""
    args = build_parser().parse_args(
        ["capture", "run", "--metrics-top-k", "3", "--metrics-max-series", "5000",
         "--metrics-grace-s", "30", "--coverage-window-s", "120"]
    )  # fmt: skip
    assert _metrics_config(args, "node-1") == MetricsConfig(
        node="node-1",
        cardinality=CardinalityConfig(top_k=3, max_series=5000, grace_s=30.0),
        coverage_window_s=120.0,
    )


def test_defaults_are_the_exporters_own() -> None:
    """Without the flags the service runs with the documented defaults (10, 20000, 60 s, 60 s)."""
    args = build_parser().parse_args(["capture", "run"])
    assert _metrics_config(args, "n") == MetricsConfig(node="n")
    assert MetricsConfig(node="n") == MetricsConfig(
        node="n", cardinality=CardinalityConfig(10, 20_000, 60.0), coverage_window_s=60.0
    )


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--metrics-top-k", "-1"], "--metrics-top-k"),
        (["--metrics-max-series", "10"], "--metrics-max-series"),
        (["--metrics-grace-s", "-5"], "--metrics-grace-s"),
        (["--coverage-window-s", "0"], "--coverage-window-s"),
    ],
)
def test_bad_values_are_one_usage_line_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits 2 with one line that names the flag, before any OVSDB connection."""
    rc = main(["capture", "run", "--ovsdb", "unix:/nonexistent/db.sock", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1, err
    assert flag in err[0]
    assert err[0].startswith("mirrorctl: error:")
