"""Filter expressions compiled by libpcap: same program as tcpdump, snaplen in ret, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from capture import CaptureError, PcapWriter
from capture._bpf import compile_filter

BPF_RET_K = 0x06


def tcpdump_program(tmp_path: Path, expression: str, snaplen: int) -> str:
    """What `tcpdump -ddd` compiles for an Ethernet capture of that snaplen."""
    ref = tmp_path / "ref.pcap"
    PcapWriter(ref, snaplen=snaplen).close()
    out = subprocess.run(
        ["tcpdump", "-ddd", "-r", str(ref), expression],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    "expression",
    [
        "udp port 5555",
        "tcp[tcpflags] & tcp-syn != 0",
        "ip6 and icmp6",
        "vlan 100 and host 10.0.0.1",
    ],
)
def test_program_is_what_tcpdump_compiles(tmp_path: Path, expression: str) -> None:
    """The compiled instructions equal tcpdump's for the same expression and snaplen."""
    program = compile_filter(expression, snaplen=65535)
    assert program.dump() == tcpdump_program(tmp_path, expression, 65535)


def test_snaplen_is_carried_by_the_accepting_ret() -> None:
    """Every accepting `ret` returns the snaplen, which is how the kernel truncates frames."""
    program = compile_filter("udp", snaplen=96)
    rets = {k for code, _, _, k in program.instructions if code == BPF_RET_K}
    assert rets == {0, 96}


def test_no_expression_accepts_everything_up_to_snaplen() -> None:
    """No filter compiles to a single `ret #snaplen`."""
    assert compile_filter(None, snaplen=128).instructions == ((BPF_RET_K, 0, 0, 128),)


def test_bad_expression_names_it_and_libpcaps_reason() -> None:
    """A syntax error raises CaptureError quoting the expression and libpcap's message."""
    with pytest.raises(CaptureError) as info:
        compile_filter("udp prot 5555")
    message = str(info.value)
    assert "'udp prot 5555'" in message
    assert "syntax error" in message
    assert info.value.source == "udp prot 5555"
