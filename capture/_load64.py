"""An unaligned little-endian 8-byte load for compiled loops: one instruction, not eight.

numba reads a ``uint8`` array a byte at a time; assembling a 64-bit word from eight reads costs
eight loads, shifts and ORs where x86 does one unaligned load. ``load_le64(data, at)`` emits that
load (LLVM ``load i64, align 1``). Like every compiled read here it checks no bounds: the caller
must know ``data[at : at + 8]`` lies inside the array.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]  # numba's own dependency, no stubs
from numba import types
from numba.extending import intrinsic

__all__ = ["load_le64"]


def _load_le64(typingctx: Any, data: Any, at: Any) -> Any:
    """``data[at : at + 8]`` as a little-endian ``uint64`` (byte-swapped on a big-endian host)."""
    sig = types.uint64(data, at)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        i64 = ir.IntType(64)
        address = builder.bitcast(builder.gep(array.data, [args[1]]), i64.as_pointer())
        word = builder.load(address, align=1)
        if sys.byteorder == "big":
            word = builder.bswap(word)
        return word

    return sig, codegen


#: ``load_le64(data, at)``, callable from compiled code only.
load_le64 = cast(Callable[[npt.NDArray[np.uint8], int], np.uint64], intrinsic(_load_le64))
