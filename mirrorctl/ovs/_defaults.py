"""Kube-OVN's names and where OVSDB is found by default.

Apart from the modules that use them, because the CLI's argparse defaults and help text need them
and must not pay for ovsdbapp and pyroute2 to build a parser.
"""

from __future__ import annotations

DEFAULT_OUTPUT = "mirror0"
DEFAULT_BRIDGE = "br-int"
DEFAULT_ENDPOINT = "unix:/var/run/openvswitch/db.sock"
ENDPOINT_ENV = "MIRRORSCOPE_OVSDB"
#: How long ``--follow-kube-ovn`` keeps the last selection after kube-ovn-cni's restart wiped m0:
#: long enough for it to re-add every annotated pod on a busy node.
DEFAULT_KUBE_OVN_GRACE_S = 60.0
