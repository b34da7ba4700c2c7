"""A delivery's conn.log JSON lines written by one compiled loop from its number columns.

The flow table hands each delivery's numbers over as one int64 row per record (``NUM_FIELDS``
names the columns); the text fields (uid, addresses, names, the endpoints', tunnel's and DNS
fragments) come as one ASCII blob, each field ended by a newline, ``TEXT_FIELDS`` columns of
``n`` fields one after the other. Times are integer nanoseconds written as exact decimals: a
parser reads ``ts`` back as the float the record holds (``ns / 1e9``, correctly rounded both
ways), ``duration`` as ``round(duration, 6)`` (its microseconds are rounded in ``_recordjson``,
where the rare exact ties are settled as Python's ``round`` does) and the RTTs as
``round(rtt, 9)``, which is the record's own value for any RTT below 2**22 s. The text is not
``json.dumps``'s byte for byte (``0.00001`` for ``1e-05``, ``1767225600.016287327`` for the 17
digits ``repr`` picks); every value parses the same.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture import njit, njit_inline

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: The number columns, in order.
NUM_FIELDS = (
    "ts_ns",
    "duration_us",
    "orig_p",
    "resp_p",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "orig_l2_bytes",
    "resp_l2_bytes",
    "vlan",
    "tunnel_vni",
    "ip_version",
    "is_tcp",
    "retrans_orig",
    "retrans_resp",
    "rst_orig",
    "rst_resp",
    "zero_win_orig",
    "zero_win_resp",
    "has_rtt_client",
    "rtt_client_ns",
    "has_rtt_server",
    "rtt_server_ns",
)
#: The text columns of the blob, in order ("" where a record has none: service, history).
TEXT_FIELDS = (
    "uid",
    "orig_h",
    "resp_h",
    "proto",
    "service",
    "conn_state",
    "history",
    "orig_endpoint",  # '"orig_kind":…,"orig_node":…' (escaped)
    "resp_endpoint",
    "node",  # quoted and escaped
    "tunnel",  # ',"tunnel":…,"outer_dst":…'
    "dns",  # ',"dns_queries":…' or ""
    "end_reason",
)
#: Bytes a line takes beside its text fields and numbers (keys, quotes, punctuation), rounded up.
LINE_OVERHEAD = 640
NUMBER_BYTES = 22  # an int64 or a decimal of one, with sign and point


def _lit(text: str) -> U8:
    return np.frombuffer(text.encode(), np.uint8).copy()


_TS = _lit('{"ts":')
_UID = _lit(',"uid":"')
_ORIG_H = _lit('","id.orig_h":"')
_ORIG_P = _lit('","id.orig_p":')
_RESP_H = _lit(',"id.resp_h":"')
_RESP_P = _lit('","id.resp_p":')
_PROTO = _lit(',"proto":"')
_SERVICE = _lit(',"service":"')
_DURATION = _lit(',"duration":')
_ORIG_BYTES = _lit(',"orig_bytes":')
_RESP_BYTES = _lit(',"resp_bytes":')
_CONN_STATE = _lit(',"conn_state":"')
_MISSED = _lit('","missed_bytes":')
_HISTORY = _lit(',"history":"')
_QUOTE = _lit('"')
_ORIG_PKTS = _lit(',"orig_pkts":')
_ORIG_IPB = _lit(',"orig_ip_bytes":')
_RESP_PKTS = _lit(',"resp_pkts":')
_RESP_IPB = _lit(',"resp_ip_bytes":')
_ORIG_L2 = _lit(',"orig_l2_bytes":')
_RESP_L2 = _lit(',"resp_l2_bytes":')
_COMMA = _lit(",")
_NODE = _lit(',"node":')
_VLAN = _lit(',"vlan":')
_VNI = _lit(',"tunnel_vni":')
_IPVER = _lit(',"ip_version":')
_RETX_O = _lit(',"tcp_retrans_orig":')
_RETX_R = _lit(',"tcp_retrans_resp":')
_RST = _lit(',"tcp_rst":')
_RST_O = _lit(',"tcp_rst_orig":')
_RST_R = _lit(',"tcp_rst_resp":')
_ZW_O = _lit(',"tcp_zero_win_orig":')
_ZW_R = _lit(',"tcp_zero_win_resp":')
_RTT_C = _lit(',"tcp_rtt_client":')
_RTT_S = _lit(',"tcp_rtt_server":')
_END = _lit(',"end_reason":"')
_CLOSE = _lit('"}\n')


@njit
def _put(out: U8, pos: int, lit: U8) -> int:
    n: int = lit.shape[0]
    for i in range(n):
        out[pos + i] = lit[i]
    return pos + n


@njit
def _put_int(out: U8, pos: int, v: int) -> int:
    if v < 0:
        out[pos] = 45  # "-"
        pos += 1
        v = -v
    if v < 10:  # most counts of a line: flags, VLAN 0, small packet counts
        out[pos] = 48 + v
        return pos + 1
    # the digits counted by multiplying up (a division a digit cost twice the writing)
    digits = 2
    bound = 100
    while v >= bound and digits < 19:  # 19 digits: int64's most; 10**19 would wrap
        digits += 1
        bound *= 10
    end = pos + digits
    for i in range(1, digits + 1):
        out[end - i] = 48 + v % 10
        v //= 10
    return end


@njit
def _put_decimal(out: U8, pos: int, v: int, places: int) -> int:
    """*v* / 10**places exactly, trailing zeros dropped but one ("3.0", "0.000123")."""
    if v < 0:
        out[pos] = 45
        pos += 1
        v = -v
    scale = 10**places
    pos = _put_int(out, pos, v // scale)
    out[pos] = 46  # "."
    pos += 1
    f = v % scale
    for i in range(places):
        out[pos + places - 1 - i] = 48 + f % 10
        f //= 10
    end = pos + places
    while end > pos + 1 and out[end - 1] == 48:
        end -= 1
    return end


@njit
def _put_field(out: U8, pos: int, text: U8, at: int) -> tuple[int, int]:
    """Copy the text field at *at* (up to its newline); the output and next field positions."""
    while text[at] != 10:
        out[pos] = text[at]
        pos += 1
        at += 1
    return pos, at + 1


@njit_inline
def _key_int(out: U8, pos: int, key: U8, v: int) -> int:
    """*key* (a literal ending in the value's colon), then the integer *v*."""
    return _put_int(out, _put(out, pos, key), v)


@njit_inline
def _key_text(out: U8, pos: int, key: U8, text: U8, at: int) -> tuple[int, int]:
    """*key*, then the text field at *at*; the output and next field positions."""
    return _put_field(out, _put(out, pos, key), text, at)


@njit_inline
def _optional_text(out: U8, pos: int, key: U8, text: U8, at: int) -> tuple[int, int]:
    """``key"field"`` where the text field at *at* is not empty, else nothing (the key left out,
    as ``as_conn_log`` leaves out a None)."""
    if text[at] == 10:
        return pos, at + 1
    pos, at = _key_text(out, pos, key, text, at)
    return _put(out, pos, _QUOTE), at


@njit
def format_lines(nums: I64, text: U8, n_text: int, out: U8) -> int:
    """Write the JSON lines of the ``nums.shape[0]`` records into *out*; the bytes written."""
    n = nums.shape[0]
    # each text column starts after n fields of the ones before it
    cur = np.empty(n_text, np.int64)
    cur[0] = 0
    col, seen, at = 1, 0, 0
    while col < n_text:
        if text[at] == 10:
            seen += 1
            if seen == n:
                cur[col] = at + 1
                col += 1
                seen = 0
        at += 1
    pos = 0
    for r in range(n):
        v = nums[r]
        pos = _put(out, pos, _TS)
        pos = _put_decimal(out, pos, v[0], 9)
        pos, cur[0] = _key_text(out, pos, _UID, text, cur[0])
        pos, cur[1] = _key_text(out, pos, _ORIG_H, text, cur[1])
        pos = _key_int(out, pos, _ORIG_P, v[2])
        pos, cur[2] = _key_text(out, pos, _RESP_H, text, cur[2])
        pos = _key_int(out, pos, _RESP_P, v[3])
        pos, cur[3] = _key_text(out, pos, _PROTO, text, cur[3])
        pos = _put(out, pos, _QUOTE)
        pos, cur[4] = _optional_text(out, pos, _SERVICE, text, cur[4])
        pos = _put(out, pos, _DURATION)
        pos = _put_decimal(out, pos, v[1], 6)
        pos = _key_int(out, pos, _ORIG_BYTES, v[4])
        pos = _key_int(out, pos, _RESP_BYTES, v[5])
        pos, cur[5] = _key_text(out, pos, _CONN_STATE, text, cur[5])
        pos = _key_int(out, pos, _MISSED, v[6])
        pos, cur[6] = _optional_text(out, pos, _HISTORY, text, cur[6])
        pos = _key_int(out, pos, _ORIG_PKTS, v[7])
        pos = _key_int(out, pos, _ORIG_IPB, v[8])
        pos = _key_int(out, pos, _RESP_PKTS, v[9])
        pos = _key_int(out, pos, _RESP_IPB, v[10])
        pos = _key_int(out, pos, _ORIG_L2, v[11])
        pos = _key_int(out, pos, _RESP_L2, v[12])
        pos, cur[7] = _key_text(out, pos, _COMMA, text, cur[7])
        pos, cur[8] = _key_text(out, pos, _COMMA, text, cur[8])
        pos, cur[9] = _key_text(out, pos, _NODE, text, cur[9])
        pos = _key_int(out, pos, _VLAN, v[13])
        pos = _key_int(out, pos, _VNI, v[14])
        pos, cur[10] = _put_field(out, pos, text, cur[10])
        pos = _key_int(out, pos, _IPVER, v[15])
        if v[16]:
            pos = _key_int(out, pos, _RETX_O, v[17])
            pos = _key_int(out, pos, _RETX_R, v[18])
            pos = _key_int(out, pos, _RST, v[19] + v[20])
            pos = _key_int(out, pos, _RST_O, v[19])
            pos = _key_int(out, pos, _RST_R, v[20])
            pos = _key_int(out, pos, _ZW_O, v[21])
            pos = _key_int(out, pos, _ZW_R, v[22])
            if v[23]:
                pos = _put(out, pos, _RTT_C)
                pos = _put_decimal(out, pos, v[24], 9)
            if v[25]:
                pos = _put(out, pos, _RTT_S)
                pos = _put_decimal(out, pos, v[26], 9)
        pos, cur[11] = _put_field(out, pos, text, cur[11])
        pos, cur[12] = _key_text(out, pos, _END, text, cur[12])
        pos = _put(out, pos, _CLOSE)
    return pos
