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
from numba import literal_unroll

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
        for column in literal_unroll(wide):
            column[:stop] = 0
    if groups & ENCAP:
        for column in literal_unroll(encaps):
            column[:stop] = 0


@njit_inline
def store_sparse(wide: Wide, encaps: Encaps, i: int, written: int, row: Row) -> None:
    """Row *i* of the *written* groups' columns from *row*."""
    if written & WIDE:
        wide[0][i] = row.src_hi
        wide[1][i] = row.dst_hi
    if written & ENCAP:
        e = encaps
        e[0][i], e[1][i], e[2][i] = row.encap, row.vlan, row.tun_type
        e[3][i], e[4][i] = row.tun_vni, row.tun_dir
        e[5][i], e[6][i] = row.outer_src_hi, row.outer_src_lo
        e[7][i], e[8][i] = row.outer_dst_hi, row.outer_dst_lo
        e[9][i], e[10][i], e[11][i] = row.carrier_ports, row.carrier_ip_len, row.carrier_l4_len


@njit_inline
def clear_sparse(wide: Wide, encaps: Encaps, i: int, written: int) -> None:
    """Row *i* of the *written* groups' columns zeroed: a frame that has neither group. (Each
    column by name: numba unrolls no loop over a tuple in a function it inlines.)"""
    if written & WIDE:
        wide[0][i] = 0
        wide[1][i] = 0
    if written & ENCAP:
        e = encaps
        e[0][i], e[1][i], e[2][i], e[3][i], e[4][i], e[5][i] = 0, 0, 0, 0, 0, 0
        e[6][i], e[7][i], e[8][i], e[9][i], e[10][i], e[11][i] = 0, 0, 0, 0, 0, 0
