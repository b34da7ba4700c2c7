"""The gap screen's merge of each flow's two directions back into arrival order."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from analyzers._flowgapscreen import by_arrival

I64 = npt.NDArray[np.int64]


def _grouped(n_flows: int, n_rows: int) -> tuple[I64, npt.NDArray[np.intp], I64]:
    """Rows of *n_flows* flows as the flow table hands them over: by (flow, direction), then
    arrival; the flows' slots are in no particular order."""
    rng = np.random.default_rng(3)
    rws = rng.choice(n_rows, size=n_rows // 2, replace=False).astype(np.int64)
    slot_of_flow = rng.choice(10 * n_flows, size=n_flows, replace=False).astype(np.int64)
    flow = rng.integers(0, n_flows, rws.shape[0])
    d = rng.integers(0, 2, rws.shape[0]).astype(np.intp)
    order = np.lexsort((rws, d, flow))
    return slot_of_flow[flow[order]], d[order], rws[order]


@pytest.mark.parametrize("n_rows", [500, 1 << 62])  # packed into one integer, or too wide for it
def test_each_flow_comes_back_in_arrival_order(n_rows: int) -> None:
    """Each flow's rows, both directions, come back together and by row number, with fields."""
    slot, d, rws = _grouped(12, 500)
    pos, flow, dm, rm = by_arrival(slot, d, rws, n_rows)
    assert sorted(pos.tolist()) == list(range(slot.shape[0]))
    assert (rm == rws[pos]).all()
    assert (dm == d[pos]).all()
    same = np.diff(flow) == 0
    assert (np.diff(rm)[same] > 0).all()
    assert (np.diff(slot[pos])[same] == 0).all()
    assert len(set(slot[pos][np.append(True, ~same)].tolist())) == 12
