"""Every flag from the environment and a config file: ``MIRRORSCOPE_<FLAG>`` and ``--config``.

One mechanism for all commands, flags added later included: it walks the finished parser and turns
what it finds into argparse defaults, so the command line still wins. Precedence, highest first:
the command line, ``MIRRORSCOPE_<FLAG>`` (``--keep-mirror`` is ``MIRRORSCOPE_KEEP_MIRROR``), the
config file, the built-in default.

The config file is TOML (``tomllib``: no dependency, and a ConfigMap holds it as is). Top-level keys
are flag names without dashes and apply to every command that has the flag; a table named after a
command (``[watch]``, ``[capture.run]``) applies to that command only and wins over the top level::

    ovsdb = "unix:/var/run/openvswitch/db.sock"
    [capture.run]
    keep-mirror = "follow-kube-ovn"
    ipfix = ["10.0.0.9:4739"]
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mirrorctl.ovs import UsageError

ENV_PREFIX = "MIRRORSCOPE_"
CONFIG_ENV = "MIRRORSCOPE_CONFIG"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_name(action: argparse.Action) -> str | None:
    """``MIRRORSCOPE_<FLAG>`` for an option's first long flag; None for positionals and --help."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    if not longs or isinstance(action, argparse._HelpAction | argparse._VersionAction):
        return None
    return ENV_PREFIX + longs[0][2:].upper().replace("-", "_")


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and every (sub)command parser, with its command path (``("capture", "run")``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def load_config(path: Path) -> dict[str, Any]:
    """Read a TOML config file; errors name the file and what to fix."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UsageError(f"--config {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config {path}: not valid TOML: {e}") from None


def _section(config: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    node: Any = config
    for name in path:
        node = node.get(name, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    """A config or environment value as the flag's own type would parse it."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise UsageError(f"{where}: expected true or false, not {value!r}")
        return (text in _TRUE) == isinstance(action, argparse._StoreTrueAction)
    if isinstance(action, argparse._CountAction):
        return int(value)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
        return [_one(action, item, where) for item in items]
    return _one(action, value, where)


def _one(action: argparse.Action, value: Any, where: str) -> Any:
    text = value if isinstance(value, str) else str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: invalid value {value!r} ({e})") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UsageError(f"{where}: {value!r} is not one of {choices}")
    return converted


def command_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, ...]:
    """The command path a parse chose (``("capture", "run")``), read from the subparsers' dests."""
    path: list[str] = []
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        sub = next((a for a in current._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None and sub.dest else None
        if sub is None or name is None:
            break
        path.append(name)
        current = sub.choices.get(name)
    return tuple(path)


def apply_settings(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    command: Sequence[str] = (),
) -> None:
    """Make the environment and ``config`` the defaults of ``command``'s flags (and its parents').

    Only the parsers on the command's path are touched: commands share actions through
    ``parents=``, so ``[watch]`` applied to every command would change ``enable`` too.
    """
    config = config or {}
    path = tuple(command)
    for where, parser_ in commands(parser):
        if where != path[: len(where)]:
            continue
        sections = [_section(config, path[:i]) for i in range(len(path), -1, -1)]
        for action in parser_._actions:
            name = env_name(action)
            if name is None:
                continue
            key = next(s[2:] for s in action.option_strings if s.startswith("--"))
            if name in environ:
                action.default = _convert(action, environ[name], name)
                continue
            for depth, section in zip(range(len(path), -1, -1), sections, strict=True):
                if key in section and not isinstance(section[key], Mapping):
                    label = f"[{'.'.join(path[:depth])}] {key}" if depth else key
                    action.default = _convert(action, section[key], f"config {label}")
                    break


def settle(
    parser: argparse.ArgumentParser, argv: Sequence[str], environ: Mapping[str, str]
) -> None:
    """Apply the environment and the config file to the command ``argv`` names.

    A first parse finds the command and ``--config``; the caller parses again with the new
    defaults (argparse exits on ``--help`` and usage errors here, as it would there).
    """
    first = parser.parse_args(list(argv))
    path: Path | None = getattr(first, "config", None)
    if path is None and environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
    config = load_config(path) if path is not None else None
    apply_settings(parser, environ, config, command_of(parser, first))
