"""The kernels, one module per concept; :mod:`.numpy_tier` aside, the only place lateint-lite
imports numba.

- :mod:`.maxsim`: MaxSim over int8/float32 token matrices, dense dot products
- :mod:`.residual`: the residual codec's encode/decode and its MaxSim
- :mod:`.plaid`: PLAID's cell selection, candidate gathering, centroid-only MaxSim
- :mod:`.kmeans`: k-means++ seeding, centroid sums, flat and two-level assignment
- :mod:`.varint`: varint-coded inverted lists
- :mod:`.pooling`: token pooling, documents' mean tokens
- :mod:`.quantize`: per-token int8 quantization, the canonical form's values and unit rows
- :mod:`.numpy_tier`: the read kernels in plain numpy, for short-lived processes
- :mod:`._runtime`: the JIT flags, the parallel-kernel lock, array types
- :mod:`._tier`: which tier a read kernel runs in

Every kernel takes flat arrays plus offsets and does no bounds checks of its
own; the typed public wrappers validate shapes, dtypes and offsets first (``_checks``),
so nothing read from a file reaches a kernel unchecked. Each kernel has a
plain-numpy twin in tests/reference.py that the tests compare it against (also
under ``NUMBA_DISABLE_JIT=1``).

Callers use ``kernels.name(...)`` at call time (never ``from .kernels import name`` at
import time): a name resolves to the active tier's function on every access, and numba is
imported only when a numba kernel is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._checks import check_offsets, check_offsets_loose
from ._runtime import PARALLEL_LOCK, in_threads
from ._tier import KERNEL_TIERS, active_tier, tier_in_use, use_tier

#: Where each numba kernel's wrapper lives.
_NUMBA_HOMES = {
    "canonical_int8": "quantize",
    "centroid_sums": "kmeans",
    "kmeanspp_seeds": "kmeans",
    "nearest_centroids": "kmeans",
    "nearest_in_groups": "kmeans",
    "top_per_row": "kmeans",
    "document_means": "pooling",
    "dot_matrix": "maxsim",
    "maxsim_f32": "maxsim",
    "maxsim_int8": "maxsim",
    "centroid_best": "plaid",
    "centroid_maxsim": "plaid",
    "gather_candidates": "plaid",
    "select_cells": "plaid",
    "pool_documents": "pooling",
    "quantize_int8": "quantize",
    "unit_rows_int8": "quantize",
    "decode_residuals": "residual",
    "encode_residuals": "residual",
    "maxsim_residual": "residual",
    "varint_decode_lists": "varint",
    "varint_encode": "varint",
    "varint_encode_lists": "varint",
}
#: The read kernels with a numpy form (numpy_tier), and helpers that are numpy in both tiers.
NUMPY_FORMS = frozenset(
    {
        "centroid_best",
        "centroid_maxsim",
        "decode_residuals",
        "dot_matrix",
        "gather_candidates",
        "maxsim_f32",
        "maxsim_int8",
        "maxsim_residual",
        "select_cells",
        "varint_decode_lists",
    }
)
_ALWAYS_NUMPY = frozenset({"bucket_lut"})


def numba_kernel(name: str) -> Any:
    """The numba form of kernel ``name`` whatever the active tier (imports numba)."""
    return getattr(importlib.import_module(f".{_NUMBA_HOMES[name]}", __name__), name)


def numpy_kernel(name: str) -> Any:
    """The numpy form of read kernel ``name`` (never imports numba)."""
    if name not in NUMPY_FORMS | _ALWAYS_NUMPY:
        raise AttributeError(f"kernel {name!r} has no numpy form")
    from . import numpy_tier

    return getattr(numpy_tier, name)


def __getattr__(name: str) -> Any:
    if name in _ALWAYS_NUMPY or (name in NUMPY_FORMS and active_tier() == "numpy"):
        return numpy_kernel(name)
    if name in _NUMBA_HOMES:
        return numba_kernel(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KERNEL_TIERS",
    "NUMPY_FORMS",
    "PARALLEL_LOCK",
    "active_tier",
    "bucket_lut",
    "check_offsets",
    "check_offsets_loose",
    "in_threads",
    "numba_kernel",
    "numpy_kernel",
    "tier_in_use",
    "use_tier",
    *sorted(_NUMBA_HOMES),
]
