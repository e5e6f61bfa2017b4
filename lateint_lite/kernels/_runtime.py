"""What every kernel module shares: the JIT decorator with the project's flags, the lock
around parallel kernels, and the numpy array types the typed wrappers take.

Importing this module does not import numba (the numpy tier imports it too); the numba
kernel modules import numba when they are first used.

Parallel kernels run on numba's default (workqueue) threading layer, which
aborts when two Python threads enter parallel regions at once; wrappers hold
:data:`PARALLEL_LOCK` while one runs (each already uses every core).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

#: Compiled kernels are cached on disk next to their module (cold CLI start 0.65 s vs 4.5 s).
CACHE = True
PARALLEL_LOCK = threading.Lock()

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]
Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
UInt16Array = npt.NDArray[np.uint16]

F = TypeVar("F", bound=Callable[..., Any])


def jit(
    *, parallel: bool = False, fastmath: bool = False, inline: Literal["never", "always"] = "never"
) -> Callable[[F], F]:
    """``numba.njit`` with on-disk caching; ``inline="always"`` for register-tile helpers."""
    from numba import njit

    return cast("Callable[[F], F]", njit(cache=CACHE, parallel=parallel, fastmath=fastmath, inline=inline))
