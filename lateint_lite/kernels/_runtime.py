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
    *,
    parallel: bool = False,
    fastmath: bool = False,
    inline: Literal["never", "always"] = "never",
    nogil: bool = False,
) -> Callable[[F], F]:
    """``numba.njit`` with on-disk caching; ``inline="always"`` for register-tile helpers,
    ``nogil`` for serial kernels that :func:`in_threads` runs beside BLAS calls."""
    from numba import njit

    return cast("Callable[[F], F]", njit(cache=CACHE, parallel=parallel, fastmath=fastmath, inline=inline, nogil=nogil))


def thread_count() -> int:
    """Threads a blocked kernel may use: numba's setting (``NUMBA_NUM_THREADS``, or the cores)."""
    import numba

    return max(1, int(numba.get_num_threads()))


def in_threads(work: Callable[[int, int], None], n: int, rows: int) -> None:
    """Call ``work(lo, hi)`` for consecutive blocks of ``rows`` of ``n`` rows, on up to
    :func:`thread_count` Python threads. For work that spends its time in BLAS or in ``nogil``
    kernels, which release the GIL; each block writes only its own rows. The first exception
    raised by a block is raised here."""
    blocks = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
    workers = min(thread_count(), len(blocks))
    if workers <= 1:
        for lo, hi in blocks:
            work(lo, hi)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="lateint-kernel") as pool:
        for _ in pool.map(lambda block: work(*block), blocks):
            pass
