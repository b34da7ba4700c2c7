"""ActiveFlows across tables: the concatenation the --workers parent merges with, and options."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers import ActiveFlows, Endpoint, EndpointKind, FlowTableOptions, IdentityMap
from tests.unit import flowkit

A = Endpoint(EndpointKind.POD, "shop", "a", "n1")
B = Endpoint(EndpointKind.POD, "shop", "b", "n1")


def view_of(*conversations: list[flowkit.Pkt]) -> ActiveFlows:
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A), ("10.0.0.2", B)])
    table, _ = flowkit.table(identity=ids)
    for pkts in conversations:
        table.process(*flowkit.batch(pkts))
    return table.active_view()


def test_concat_keeps_every_flow_of_every_table_in_order() -> None:
    """Concatenated views hold each table's flows, in table order, every column aligned."""
    one = view_of(flowkit.handshake())
    two = view_of(flowkit.handshake(cp=40001), flowkit.handshake(cp=40002, t=1.0))
    both = ActiveFlows.concat([one, two])
    assert len(both) == 3
    for name in ActiveFlows.__dataclass_fields__:
        got = getattr(both, name)
        assert got.shape[0] == 3, name
        assert np.array_equal(got, np.concatenate([getattr(one, name), getattr(two, name)])), name
    assert both.orig.tolist() == [A, A, A]


def test_concat_of_nothing_is_empty_with_the_tables_dtypes() -> None:
    """No table yet: zero flows, and the columns keep the dtypes a real view has."""
    empty = ActiveFlows.concat([])
    real = view_of(flowkit.handshake())
    assert len(empty) == 0
    for name in ActiveFlows.__dataclass_fields__:
        assert getattr(empty, name).dtype == getattr(real, name).dtype, name


def test_flow_table_options_refuse_an_empty_table() -> None:
    """A table bound below one flow is refused where the options are made."""
    with pytest.raises(ValueError, match="max_flows"):
        FlowTableOptions(max_flows=0)
