"""Every flag from MIRRORSCOPE_<FLAG> and a TOML --config file, below the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mirrorctl.cli import build_parser, main
from mirrorctl.cli._settings import apply_settings, command_of, commands, env_name, load_config
from mirrorctl.ovs import UsageError


def parse(
    argv: list[str], env: dict[str, str], config: dict[str, object] | None = None
) -> argparse.Namespace:
    parser = build_parser()
    apply_settings(parser, env, config, command_of(parser, parser.parse_args(argv)))
    return parser.parse_args(argv)


def test_every_flag_of_every_command_has_an_environment_name() -> None:
    """The mechanism is generic: each long option of each command maps to MIRRORSCOPE_<FLAG>."""
    missing = []
    for path, command in commands(build_parser()):
        for action in command._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                name = env_name(action)
                if name is None or not name.startswith("MIRRORSCOPE_"):
                    missing.append((path, action.option_strings))
    assert missing == []
    run = dict(commands(build_parser()))[("capture", "run")]
    names = {env_name(a) for a in run._actions}
    assert {"MIRRORSCOPE_KEEP_MIRROR", "MIRRORSCOPE_TOKEN_FILE", "MIRRORSCOPE_OVSDB"} <= names


def test_environment_values_are_parsed_as_the_flag_would_be() -> None:
    """Types, choices, store_true and repeatable flags (comma-separated) come from the env."""
    env = {
        "MIRRORSCOPE_KEEP_MIRROR": "follow-kube-ovn",
        "MIRRORSCOPE_WORKERS": "3",
        "MIRRORSCOPE_RECORDS": "/var/lib/mirrorscope/records",
        "MIRRORSCOPE_IPFIX": "10.0.0.9:4739,tcp:10.0.0.10:4739",
        "MIRRORSCOPE_NO_DEDUP": "true",
    }
    args = parse(["capture", "run"], env)
    assert args.keep_mirror == "follow-kube-ovn"
    assert args.workers == 3
    assert args.records == Path("/var/lib/mirrorscope/records")
    assert args.ipfix == ["10.0.0.9:4739", "tcp:10.0.0.10:4739"]
    assert args.no_dedup is True


def test_command_line_beats_environment_beats_config_file() -> None:
    """--workers 2 wins over MIRRORSCOPE_WORKERS, which wins over the file's [capture.run]."""
    config = {"workers": 7, "capture": {"run": {"workers": 5, "blocks": 32}}, "bridge": "br-x"}
    assert (
        parse(["capture", "run", "--workers", "2"], {"MIRRORSCOPE_WORKERS": "4"}, config).workers
        == 2
    )
    args = parse(["capture", "run"], {"MIRRORSCOPE_WORKERS": "4"}, config)
    assert (args.workers, args.blocks, args.bridge) == (4, 32, "br-x")
    assert parse(["capture", "run"], {}, config).workers == 5


def test_a_command_section_stays_with_its_command() -> None:
    """[watch] sets watch's flags only, though watch and enable share --bridge via parents."""
    config = {"watch": {"bridge": "br-watch", "follow-kube-ovn": True}}
    assert parse(["watch"], {}, config).bridge == "br-watch"
    assert parse(["watch"], {}, config).follow_kube_ovn is True
    assert parse(["enable", "--global"], {}, config).bridge == "br-int"


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        ("capture run", {"MIRRORSCOPE_KEEP_MIRROR": "sometimes"}, "is not one of none, global"),
        ("capture run", {"MIRRORSCOPE_WORKERS": "many"}, "MIRRORSCOPE_WORKERS: invalid value"),
        ("watch", {"MIRRORSCOPE_FOLLOW_KUBE_OVN": "maybe"}, "expected true or false"),
    ],
)
def test_bad_values_name_the_variable(command: str, env: dict[str, str], message: str) -> None:
    """A value the flag would refuse is refused with the variable's name, before parsing."""
    with pytest.raises(UsageError, match=message):
        parse(command.split(), env)


def test_config_file_from_flag_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() reads --config, else MIRRORSCOPE_CONFIG; the values reach the command's flags."""
    path = tmp_path / "mirrorscope.toml"
    path.write_text('ovsdb = "tcp:127.0.0.1:1"\n[status]\njson = true\n', encoding="utf-8")
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr("mirrorctl.cli._mirror._status", lambda args: seen.append(args) or 0)
    assert main(["--config", str(path), "status"]) == 0
    monkeypatch.setenv("MIRRORSCOPE_CONFIG", str(path))
    assert main(["status"]) == 0
    assert [(a.ovsdb, a.json) for a in seen] == [("tcp:127.0.0.1:1", True)] * 2
    args = parse(["capture", "run"], {}, load_config(path))
    assert args.ovsdb == "tcp:127.0.0.1:1"


def test_unreadable_or_invalid_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() reports a missing or malformed file by name and exits 2, running nothing."""
    bad = tmp_path / "bad.toml"
    bad.write_text("keep-mirror = \n", encoding="utf-8")
    assert main(["--config", str(bad), "status"]) == 2
    assert f"--config {bad}: not valid TOML" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "none.toml"), "status"]) == 2
    assert "No such file" in capsys.readouterr().err
