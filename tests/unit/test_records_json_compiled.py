"""The compiled JSON lines of the flow table's deliveries parse to the records' conn.log values."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from analyzers import FlowRecord, IdentityMap, PipelineOptions, json_lines
from analyzers._flowoptions import FlowTableOptions
from analyzers._flowtable import FlowTable
from analyzers._jsonkernel import _put_int
from analyzers._recordjson import RecordBatch, join_deliveries
from analyzers._tcpstate import ACK, SYN
from capture import CaptureError, open_capture_file
from mirrorctl import Pipeline
from tests.unit.flowkit import Pkt, batch, handshake
from tests.unit.test_golden_records import corpus_files


def _expected(records: list[FlowRecord]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(r.as_conn_log())) for r in records]


def _parsed(records: list[FlowRecord]) -> list[dict[str, Any]]:
    text = json_lines(records)
    assert text.endswith("\n")
    assert text.count("\n") == len(records)
    return [json.loads(line) for line in text.splitlines()]


def _same(records: list[FlowRecord]) -> bool:
    got, want = _parsed(records), _expected(records)
    return got == want and [list(g) for g in got] == [list(w) for w in want]


def _deliveries(pkts: list[Pkt]) -> list[list[FlowRecord]]:
    out: list[list[FlowRecord]] = []
    ft = FlowTable(IdentityMap(), options=FlowTableOptions(), on_ended=out.append, uid_seed=b"t")
    ft.process(*batch(pkts))
    ft.flush()
    return out


def test_every_corpus_delivery_parses_to_its_records_values() -> None:
    """Each delivery of every corpus capture: its lines parse to as_conn_log(), key order too."""
    compiled = 0
    differing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jsonk-") as tmp:
        for path in corpus_files():
            read = path
            if path.suffix == ".gz":
                read = Path(tmp) / path.stem
                with gzip.open(path, "rb") as src, read.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            deliveries: list[list[FlowRecord]] = []
            with Pipeline(
                on_flows=deliveries.append, options=PipelineOptions(max_flows=65_536)
            ) as p:
                try:
                    with open_capture_file(read) as source:
                        p.read(source)
                except CaptureError:
                    pass  # the records before the damage are still delivered
            compiled += sum(isinstance(d, RecordBatch) and d.intact() for d in deliveries)
            if not all(_same(d) for d in deliveries):
                differing.append(path.name)
    assert differing == []
    assert compiled > 500  # the compiled formatter did the corpus's work, not the fallback


def test_odd_times_parse_as_pythons_round_gives_them() -> None:
    """Durations on an exact half-microsecond tie or under 1e-4 s (repr's exponent form), a
    flow seen from its SYN-ACK and a timestamp of 17 digits parse to the values round() gives."""
    a, b = "10.0.0.1", "10.0.0.2"
    pkts = [
        Pkt(a, b, 1, 2, proto=17, ts=1.0),
        Pkt(a, b, 1, 2, proto=17, ts=1.0000005),  # 500 ns: a tie at 6 places
        Pkt(a, b, 3, 4, proto=17, ts=2.0),
        Pkt(b, a, 4, 3, proto=17, ts=2.000012),  # 12 us
        Pkt(a, b, 5, 80, flags=SYN | ACK, seq=9, ack=5, ts=3.0),  # the SYN-ACK first
        Pkt(b, a, 80, 5, flags=SYN, seq=4, ts=3.0000015),
        Pkt(b, a, 80, 5, flags=ACK, seq=5, ack=10, ts=3.25),
        *handshake(cp=7, t=1767225600.0162873),
    ]
    deliveries = _deliveries(pkts)
    assert any(isinstance(d, RecordBatch) for d in deliveries)
    for d in deliveries:
        assert _same(d)


def test_a_delivery_changed_after_it_was_built_is_formatted_from_its_records() -> None:
    """Replacing a record of a delivery: the lines follow the records, not the stored numbers."""
    (delivery,) = _deliveries([*handshake(cp=1), *handshake(cp=2, t=0.5)])
    assert isinstance(delivery, RecordBatch)
    assert delivery.intact()
    delivery[0] = delivery[0]._replace(orig_pkts=12345, duration=7.25)
    assert not delivery.intact()
    assert _parsed(delivery) == _expected(delivery)


def test_deliveries_join_as_one_batch_only_when_every_part_is_one() -> None:
    """Joined parts keep their numbers (row for row); a plain list among them makes a plain list."""
    parts = [*_deliveries(handshake(cp=1)), *_deliveries(handshake(cp=2, t=100.0))]
    assert len(parts) == 2
    whole = [r for p in parts for r in p]
    joined = join_deliveries([*parts, []])
    assert list(joined) == whole
    assert isinstance(joined, RecordBatch)
    assert _same(joined)
    mixed = join_deliveries([parts[0], list(parts[-1]), parts[-1]])
    assert not isinstance(mixed, RecordBatch)
    assert _same(mixed)
    assert join_deliveries([[], []]) == []


def test_the_compiled_integer_writer_writes_what_str_does() -> None:
    """Every digit count of int64, both signs and the largest value: the text of ``str``."""
    values = [0, 9, 10, 99, 100, 10**18 - 1, 10**18, 2**63 - 1, -(2**63 - 1)]
    values += [s * (10**k + d) for k in range(19) for d in (-1, 0, 1) for s in (1, -1)]
    out = np.zeros(24, np.uint8)
    for v in values:
        if abs(v) < 2**63:
            end = _put_int(out, 0, v)
            assert bytes(out[:end]) == str(v).encode(), v
