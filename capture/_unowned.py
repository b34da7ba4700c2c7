"""An array's view without a reference count, for compiled loops that hand it to helpers.

numba counts references to every array: each call of a compiled function that takes an array,
inlined or not, adds one on entry and drops it on every way out, an atomic add through a call
(``NRT_incref``/``NRT_decref``), and LLVM does not remove the pair when the helper has many
returns, as a decoder stage has. The decoder hands the batch buffer to five stages per frame: the
counting was ~40 ns of a 64-byte frame's ~75 in the stages (``analyzers._decode``).

``unowned(array)`` is the same array (data, shape, strides) with no owner: counting it is a null
check. Something else must hold the memory for as long as the view is used: a kernel's own
arguments qualify (the Python caller holds them through the call). An array the kernel allocates
does not: numba frees it after the last use of its variable, which may come before the view's
last use. The view must not be returned or stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba.extending import intrinsic

__all__ = ["unowned"]

A = TypeVar("A", bound=npt.NDArray[Any])


def _unowned(typingctx: Any, array: Any) -> Any:
    """``array`` with a null meminfo and parent: the same memory, never counted or freed."""
    sig = array(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        src = context.make_array(signature.args[0])(context, builder, args[0])
        out = context.make_array(signature.return_type)(context, builder)
        context.populate_array(
            out,
            data=src.data,
            shape=src.shape,
            strides=src.strides,
            itemsize=src.itemsize,
            meminfo=None,
            parent=None,
        )
        return out._getvalue()

    return sig, codegen


#: ``unowned(array)``, callable from compiled code only.
unowned = cast(Callable[[np.ndarray[Any, Any]], Any], intrinsic(_unowned))
