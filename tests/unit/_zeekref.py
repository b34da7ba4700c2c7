"""Our flow records against the conn.log Zeek expects, on the zeek-dev reference traces.

The traces and baselines live in the shared corpus beside the repository
(``../shared/corpus/zeek-dev``, see its README); they are read in place, never copied. Each trace
goes through the public API as ``mirrorctl capture read`` runs it (file source, optional BPF
filter, ``AnalysisPipeline`` with its default options), and the records are paired with Zeek's
connections by protocol and the unordered pair of endpoints, in time order within a 5-tuple
(Zeek's baselines mask ``ts``, so its log order stands for time). Per-direction figures are
compared per endpoint, so a pair whose originator differs still compares like with like.

What is left out, so that the figures measure flow semantics and not decoding coverage:
  * the VXLAN and Geneve carrier connections Zeek logs besides the connections inside them (a
    ``tunnel_parents`` uid on UDP 4789/6081): by design we record the inner flows only, the
    overlay between nodes being noise to a pod's operator (Teredo, AYIYA and GRE-over-UDP
    carriers we record as Zeek does, and they are compared);
  * whole traces whose link layer we do not decode yet, or that wait on another difference
    (``LATER``): their rows are shown, outside the totals.
Traces in ``NO_DEDUP`` are analysed without duplicate suppression (Zeek has none), where the
trace itself holds each packet twice.

Script mode prints the table and totals: ``python -m tests.unit._zeekref [CORPUS_DIR]``.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from analyzers import AnalysisPipeline, FlowRecord, IdentityMap, PipelineOptions
from capture import FilteredSource, FrameSource, open_capture_file

#: Traces left out of the totals until a later issue, and why.
LATER: dict[str, str] = {}
#: Traces analysed with duplicate suppression off, and why.
NO_DEDUP: dict[str, str] = {}
#: VXLAN and Geneve: carriers we leave out by design (module docstring).
_OVERLAY_PORTS = frozenset((4789, 6081))
#: IP protocols Zeek follows as tunnels and does not log as connections (IP-in-IP, IPv6-in-IP,
#: GRE); we record the carrier until we decode them.
_TUNNEL_CARRIERS = frozenset(("4", "41", "47"))
_PORTED = frozenset(("tcp", "udp", "icmp"))


def corpus_dir() -> Path:
    """Where CI and the worktrees keep the shared corpus: beside the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "corpus" / "zeek-dev"


@dataclass(frozen=True, slots=True)
class Conn:
    """One connection of either side, in the terms both share."""

    proto: str
    orig: tuple[str, int]
    resp: tuple[str, int]
    conn_state: str
    history: str
    pkts: tuple[int, int]  # orig, resp
    bytes: tuple[int | None, int | None]  # None: Zeek left it unset (single-packet connections)
    ip_bytes: tuple[int, int]
    carrier: bool = False  # a tunnel's outer connection (Zeek's side only)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        return self.proto, tuple(sorted((self.orig, self.resp)))


def _addr(text: str) -> str:
    return ipaddress.ip_address(text).compressed


def _count(text: str) -> int:
    return 0 if text in ("-", "(empty)") else int(text)


def _maybe(text: str) -> int | None:
    return None if text in ("-", "(empty)") else int(text)


def _proto(name: str, number: int) -> str:
    """Zeek's proto, but other IP protocols by number as we name them (not unknown_transport)."""
    return name if name in _PORTED else str(number)


def read_conn_log(path: Path) -> list[Conn]:
    """Zeek's ASCII conn.log, in log order."""
    names: list[str] = []
    conns: list[Conn] = []
    uids: list[str] = []
    parents: set[str] = set()
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            names = line.split("\t")[1:]
        if line.startswith("#") or not line:
            continue
        row = dict(zip(names, line.split("\t"), strict=True))
        uids.append(row.get("uid", ""))
        if row.get("tunnel_parents", "-") not in ("-", "(empty)"):
            parents.update(row["tunnel_parents"].split(","))
        proto = _proto(row["proto"], int(row.get("ip_proto", "0").replace("-", "0")))
        conns.append(
            Conn(
                proto=proto,
                orig=(_addr(row["id.orig_h"]), int(row["id.orig_p"])),
                resp=(_addr(row["id.resp_h"]), int(row["id.resp_p"])),
                conn_state=row["conn_state"],
                history="" if row["history"] == "-" else row["history"],
                pkts=(_count(row["orig_pkts"]), _count(row["resp_pkts"])),
                bytes=(_maybe(row["orig_bytes"]), _maybe(row["resp_bytes"])),
                ip_bytes=(_count(row["orig_ip_bytes"]), _count(row["resp_ip_bytes"])),
            )
        )
    return [replace(c, carrier=uid in parents) for c, uid in zip(conns, uids, strict=True)]


def _conn(r: FlowRecord) -> Conn:
    # Zeek keys other IP protocols (SCTP without its plugin too) by addresses alone.
    ports = r.proto in _PORTED
    return Conn(
        proto=r.proto,
        orig=(_addr(r.orig_h), r.orig_p if ports else 0),
        resp=(_addr(r.resp_h), r.resp_p if ports else 0),
        conn_state=r.conn_state,
        history=r.history,
        pkts=(r.orig_pkts, r.resp_pkts),
        bytes=(r.orig_bytes, r.resp_bytes),
        ip_bytes=(r.orig_ip_bytes, r.resp_ip_bytes),
    )


class _Records:
    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)


def analyse(trace: Path, bpf: str | None = None, *, batch_size: int | None = None) -> list[Conn]:
    """Our records for ``trace`` (gzip-compressed traces too), in time order."""
    options = PipelineOptions(dedup_window_ns=0) if trace.name in NO_DEDUP else None
    with tempfile.TemporaryDirectory(prefix="zeekref-") as tmp:
        path = trace
        if trace.suffix == ".gz":
            path = Path(tmp) / trace.stem
            with gzip.open(trace, "rb") as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        sink = _Records()
        pipeline = AnalysisPipeline(IdentityMap(), [sink], options=options)
        kw = {} if batch_size is None else {"batch_size": batch_size}
        with open_capture_file(path, **kw) as file_source:
            source: FrameSource = file_source if not bpf else FilteredSource(file_source, bpf)
            for batch in source.batches():
                pipeline.on_batch(batch)
        pipeline.flush()
    records = sorted(sink.records, key=lambda r: r.ts)
    return [_conn(r) for r in records if r.proto not in _TUNNEL_CARRIERS]


@dataclass(slots=True)
class Agreement:
    """How far our records agree with Zeek's on one trace (or a sum of traces)."""

    trace: str
    zeek: int = 0  # Zeek's connections compared
    ours: int = 0  # our records compared
    matched: int = 0
    conn_state: int = 0  # of the matched pairs, equal in ...
    history: int = 0
    pkts: int = 0  # both directions
    bytes: int = 0  # payload bytes, both directions
    ip_bytes: int = 0
    skipped: int = 0  # Zeek's VXLAN/Geneve carrier connections left out
    later: str = ""  # why the whole trace waits for a later issue, if it does
    mismatches: list[tuple[Conn | None, Conn | None]] = field(default_factory=list)

    def add(self, other: Agreement) -> None:
        for name in ("zeek", "ours", "matched", "conn_state", "history", "pkts", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ip_bytes += other.ip_bytes
        self.skipped += other.skipped

    @property
    def recall(self) -> float:
        return self.matched / self.zeek if self.zeek else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.ours if self.ours else 1.0

    def share(self, name: str) -> float:
        """The fraction of matched pairs equal in ``name``."""
        value: int = getattr(self, name)
        return value / self.matched if self.matched else 1.0


def compare(trace: str, zeek: list[Conn], ours: list[Conn]) -> Agreement:
    """Pair ``zeek`` with ``ours`` (both in time order) and count what agrees."""
    out = Agreement(trace, later=LATER.get(trace, ""))
    theirs = [c for c in zeek if not (c.carrier and c.resp[1] in _OVERLAY_PORTS)]
    out.skipped = len(zeek) - len(theirs)
    out.zeek, out.ours = len(theirs), len(ours)
    queues: dict[tuple[str, tuple[tuple[str, int], ...]], list[Conn]] = defaultdict(list)
    for c in ours:
        queues[c.key].append(c)
    for z in theirs:
        queue = queues.get(z.key)
        if not queue:
            out.mismatches.append((z, None))
            continue
        o = queue.pop(0)
        out.matched += 1
        flip = o.orig != z.orig  # compare per endpoint: our orig is Zeek's resp

        def same(
            zeek: tuple[int | None, int | None], o: tuple[int | None, int | None], flip: bool = flip
        ) -> bool:
            ours = o[::-1] if flip else o
            return all(z is None or z == v for z, v in zip(zeek, ours, strict=True))

        equal = (
            z.conn_state == o.conn_state,
            z.history == o.history,
            same(z.pkts, o.pkts),
            same(z.bytes, o.bytes),
            same(z.ip_bytes, o.ip_bytes),
        )
        out.conn_state += equal[0]
        out.history += equal[1]
        out.pkts += equal[2]
        out.bytes += equal[3]
        out.ip_bytes += equal[4]
        if not all(equal):
            out.mismatches.append((z, o))
    out.mismatches.extend((None, o) for queue in queues.values() for o in queue)
    return out


def pairs(corpus: Path) -> list[dict[str, str | None]]:
    loaded: list[dict[str, str | None]] = json.loads((corpus / "pairs.json").read_text())
    return loaded


def compare_pair(
    corpus: Path, pair: dict[str, str | None], *, batch_size: int | None = None
) -> Agreement:
    """One pairs.json entry: our records on its trace against its baseline."""
    trace, log = str(pair["trace"]), str(pair["conn_log"])
    ours = analyse(corpus / trace, pair.get("filter"), batch_size=batch_size)
    return compare(Path(trace).name, read_conn_log(corpus / log), ours)


_COLUMNS = ("recall", "precision", "conn_state", "history", "pkts", "bytes", "ip_bytes")


def _row(a: Agreement) -> str:
    shares = [a.recall, a.precision, *(a.share(n) for n in _COLUMNS[2:])]
    cells = " ".join(f"{s * 100:9.1f}" for s in shares)
    return f"{a.trace[:40]:40} {a.zeek:5} {a.ours:5} {a.matched:5} {a.skipped:5} {cells}"


def _brief(c: Conn | None) -> str:
    if c is None:
        return "-"
    (oh, op), (rh, rp) = c.orig, c.resp
    return (
        f"{c.proto} {oh}:{op} > {rh}:{rp} {c.conn_state} {c.history or '-'} "
        f"pkts {c.pkts} bytes {c.bytes} ip {c.ip_bytes}"
    )


def table(results: list[Agreement]) -> str:
    """Per-trace rows, then totals over the traces we decode and over all of them (percent)."""
    head = f"{'trace':40} {'zeek':>5} {'ours':>5} {'match':>5} {'skip':>5} " + " ".join(
        f"{c[:9]:>9}" for c in _COLUMNS
    )
    decoded, everything = Agreement("TOTAL (link layer decoded)"), Agreement("TOTAL (all)")
    lines = [head]
    for a in results:
        lines.append(_row(a) + (f"  later: {a.later}" if a.later else ""))
        everything.add(a)
        if not a.later:
            decoded.add(a)
    lines += [_row(decoded), _row(everything)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table (``-v``: every disagreement too) for the corpus given or beside the repo."""
    paths = [a for a in argv if not a.startswith("-")]
    corpus = Path(paths[0]) if paths else corpus_dir()
    if not (corpus / "pairs.json").is_file():
        print(f"no zeek-dev corpus at {corpus}", file=sys.stderr)
        return 2
    results = [compare_pair(corpus, p) for p in pairs(corpus)]
    print(table(results))
    if "-v" in argv or "--verbose" in argv:
        for a in results:
            for z, o in a.mismatches:
                print(f"{a.trace[:24]:24} zeek {_brief(z)}\n{'':24} ours {_brief(o)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
