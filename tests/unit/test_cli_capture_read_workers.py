"""`capture read --workers N`: shares of the flows in N processes, the same records as one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzers import DecodedBatch, decode
from analyzers._share import share_rows
from capture import FrameBatch

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
FILES = [
    CORPUS / "tcpdump-tests" / "babel_update_oobr.pcap",  # mirrored copies, odd clocks
    CORPUS / "tcpdump-tests" / "ipv6-bad-version.pcap",  # malformed frames beside a flow
    CORPUS / "zeek-dev" / "traces" / "ftp__bigtransfer.pcap",
    CORPUS / "zeek-dev" / "traces" / "tunnels__Teredo.pcap",
]


def _read(workers: int, *extra: str) -> tuple[list[str], str, int]:
    argv = [sys.executable, "-m", "mirrorctl.cli", "capture", "read", "--workers", str(workers)]
    proc = subprocess.run(
        [*argv, *extra, *map(str, FILES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    lines = []
    for line in proc.stdout.splitlines():
        rec = json.loads(line)  # every line whole: workers' lines are never interleaved
        rec.pop("uid")
        lines.append(json.dumps(rec, sort_keys=True))
    return sorted(lines), proc.stderr.strip().splitlines()[-1], proc.returncode


def test_two_and_three_workers_write_the_records_and_summary_of_one() -> None:
    """The union of the shares is one process's output, uids aside; the summary counts every
    frame, malformed frame and suppressed copy once."""
    one, summary_one, rc_one = _read(1)
    assert rc_one == 0
    assert len(one) > 20
    assert "duplicates suppressed 40" in summary_one
    assert "bad_ip_version 2" in summary_one
    for workers in (2, 3):
        many, summary, rc = _read(workers)
        assert (rc, summary) == (0, summary_one)
        assert many == one


def test_every_row_is_in_exactly_one_share() -> None:
    """Shares partition the rows; rows that are not IP go to share 0."""
    frames = [bytes(14 + 40)]  # no valid header: malformed or not IP
    batch = FrameBatch.from_frames(frames * 3, [0, 1, 2])
    dec: DecodedBatch = decode(batch)
    masks = [share_rows(dec, i, 3) for i in range(3)]
    assert masks[0].all()
    assert not masks[1].any()
    assert not masks[2].any()
    with pytest.raises(ValueError, match="share 3 of 3"):
        share_rows(dec, 3, 3)


def test_workers_refuse_the_outputs_that_need_every_flow(tmp_path: Path) -> None:
    """--notices and --ipfix see all flows in one process: with --workers 2, a usage error."""
    _, err, rc = _read(2, "--notices", str(tmp_path / "n.jsonl"))
    assert rc != 0
    assert "--notices and --ipfix need one process" in err
