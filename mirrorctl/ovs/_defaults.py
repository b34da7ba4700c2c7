"""Kube-OVN's names and where OVSDB is found by default.

Apart from the modules that use them, because the CLI's argparse defaults and help text need them
and must not pay for ovsdbapp and pyroute2 to build a parser.
"""

from __future__ import annotations

DEFAULT_OUTPUT = "mirror0"
DEFAULT_BRIDGE = "br-int"
DEFAULT_ENDPOINT = "unix:/var/run/openvswitch/db.sock"
ENDPOINT_ENV = "MIRRORSCOPE_OVSDB"
