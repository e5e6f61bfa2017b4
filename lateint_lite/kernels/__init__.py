"""Numba kernels, one module per concept; the only place lateint-lite imports numba.

- :mod:`.maxsim`: MaxSim over int8/float32 token matrices, dense dot products
- :mod:`.residual`: the residual codec's encode/decode and its MaxSim
- :mod:`.plaid`: PLAID's cell selection, candidate gathering, centroid-only MaxSim
- :mod:`.kmeans`: k-means++ seeding, centroid sums, flat and two-level assignment
- :mod:`.varint`: varint-coded inverted lists
- :mod:`.pooling`: token pooling
- :mod:`._runtime`: the JIT flags, the parallel-kernel lock, array types

Every kernel takes flat arrays plus offsets and does no bounds checks of its
own; the typed public wrappers validate shapes, dtypes and offsets first, so
nothing read from a file reaches a kernel unchecked. Each kernel has a
plain-numpy twin in tests/reference.py that the tests compare it against (also
under ``NUMBA_DISABLE_JIT=1``).
"""

from ._checks import check_offsets, check_offsets_loose
from ._runtime import PARALLEL_LOCK
from .kmeans import centroid_sums, kmeanspp_seeds, nearest_centroids, nearest_in_groups, top_per_row
from .maxsim import dot_matrix, maxsim_f32, maxsim_int8
from .plaid import centroid_maxsim, gather_candidates, select_cells
from .pooling import pool_documents
from .residual import bucket_lut, decode_residuals, encode_residuals, maxsim_residual
from .varint import varint_decode_lists, varint_encode, varint_encode_lists

__all__ = [
    "PARALLEL_LOCK",
    "bucket_lut",
    "centroid_maxsim",
    "centroid_sums",
    "check_offsets",
    "check_offsets_loose",
    "decode_residuals",
    "dot_matrix",
    "encode_residuals",
    "gather_candidates",
    "kmeanspp_seeds",
    "maxsim_f32",
    "maxsim_int8",
    "maxsim_residual",
    "nearest_centroids",
    "nearest_in_groups",
    "pool_documents",
    "select_cells",
    "top_per_row",
    "varint_decode_lists",
    "varint_encode",
    "varint_encode_lists",
]
