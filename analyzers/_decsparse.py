"""The decoder's stores into the two sparse column groups (``_deccolumns``), compiled.

A group's columns are written only from the first row of a batch that has the group on:
``zero_sparse`` then zeroes the rows before it, and from there on every row stores its values
(``store_sparse``) or, on the common frame's path, zeros (``clear_sparse``). The columns come in
two tuples: *wide* (src_hi, dst_hi) and *encaps* (encap, vlan, tun_type, tun_vni, tun_dir, the
four outer address halves, carrier_ports, carrier_ip_len, carrier_l4_len).
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from analyzers._deccolumns import ENCAP, WIDE
from analyzers._decrow import Row
from capture import njit, njit_inline

__all__ = ["clear_sparse", "store_sparse", "zero_sparse"]

A = npt.NDArray[Any]
Wide = tuple[A, A]
Encaps = tuple[A, A, A, A, A, A, A, A, A, A, A, A]


@njit
def zero_sparse(wide: Wide, encaps: Encaps, stop: int, groups: int) -> None:
    """Zero rows ``[0, stop)`` of the *groups*' columns (``WIDE``, ``ENCAP`` bits)."""
    if groups & WIDE:
        wide[0][:stop] = 0
        wide[1][:stop] = 0
    if groups & ENCAP:
        e = encaps
        e[0][:stop] = 0
        e[1][:stop] = 0
        e[2][:stop] = 0
        e[3][:stop] = 0
        e[4][:stop] = 0
        e[5][:stop] = 0
        e[6][:stop] = 0
        e[7][:stop] = 0
        e[8][:stop] = 0
        e[9][:stop] = 0
        e[10][:stop] = 0
        e[11][:stop] = 0


@njit_inline
def store_sparse(wide: Wide, encaps: Encaps, i: int, written: int, row: Row) -> None:
    """Row *i* of the *written* groups' columns from *row*."""
    if written & WIDE:
        wide[0][i] = row.src_hi
        wide[1][i] = row.dst_hi
    if written & ENCAP:
        e = encaps
        e[0][i] = row.encap
        e[1][i] = row.vlan
        e[2][i] = row.tun_type
        e[3][i] = row.tun_vni
        e[4][i] = row.tun_dir
        e[5][i] = row.outer_src_hi
        e[6][i] = row.outer_src_lo
        e[7][i] = row.outer_dst_hi
        e[8][i] = row.outer_dst_lo
        e[9][i] = row.carrier_ports
        e[10][i] = row.carrier_ip_len
        e[11][i] = row.carrier_l4_len


@njit_inline
def clear_sparse(wide: Wide, encaps: Encaps, i: int, written: int) -> None:
    """Row *i* of the *written* groups' columns zeroed: a frame that has neither group."""
    if written & WIDE:
        wide[0][i] = 0
        wide[1][i] = 0
    if written & ENCAP:
        e = encaps
        e[0][i] = 0
        e[1][i] = 0
        e[2][i] = 0
        e[3][i] = 0
        e[4][i] = 0
        e[5][i] = 0
        e[6][i] = 0
        e[7][i] = 0
        e[8][i] = 0
        e[9][i] = 0
        e[10][i] = 0
        e[11][i] = 0
