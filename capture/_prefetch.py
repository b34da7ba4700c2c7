"""A cache prefetch hint for compiled loops: start loading bytes a few iterations ahead.

A batch's frames lie far apart in its buffer, so each frame's first header read misses the cache,
and one frame's decode is a chain of dependent reads: the CPU cannot overlap the misses by itself.
The pcap record walk (``_recwalk``) is one such chain, the decoder (``analyzers._decode``) another.
``prefetch(data, at)`` emits LLVM's ``llvm.prefetch`` (a hint: it never faults, and the loop
keeps going while the line loads), which a plain read would not do: a read that misses holds up
every later instruction until it completes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]  # numba's own dependency, no stubs
from numba import types
from numba.extending import intrinsic

__all__ = ["prefetch"]


def _prefetch(typingctx: Any, data: Any, at: Any) -> Any:
    """Hint that ``data[at]`` will be read soon (read access, high locality)."""
    sig = types.void(data, at)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        )
        address = builder.bitcast(builder.gep(array.data, [args[1]]), byte)
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: ``prefetch(data, at)``, callable from compiled code only.
prefetch = cast(Callable[[npt.NDArray[np.uint8], int], None], intrinsic(_prefetch))
