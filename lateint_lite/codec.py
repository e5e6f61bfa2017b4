"""Token payload codecs: how a document's token vectors become bytes and back.

``int8``: per-token symmetric int8. A payload is ``n`` little-endian float32
scales followed by ``n x dim`` int8 values; a token decodes to ``q * scale``.
Every decoder checks the byte length against ``n_tokens`` and ``dim`` before
anything is reshaped, so a damaged row raises :class:`CorruptIndexError`.
"""

from __future__ import annotations

import numpy as np

from .errors import CorruptIndexError

INT8 = "int8"
CODECS = (INT8,)


def encode_int8(vectors: np.ndarray) -> bytes:
    """Quantize an (n, dim) float matrix to the ``int8`` payload layout."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    quantized = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return scales.tobytes() + quantized.tobytes()


def decode_int8(payload: bytes, n_tokens: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Split an ``int8`` payload into (values int8[n, dim], scales float32[n])."""
    expected = n_tokens * (4 + dim)
    if n_tokens <= 0 or len(payload) != expected:
        raise CorruptIndexError(
            f"int8 payload has {len(payload)} bytes, expected {expected} for {n_tokens} tokens of dim {dim}"
        )
    scales = np.frombuffer(payload, dtype="<f4", count=n_tokens).astype(np.float32)
    values = np.frombuffer(payload, dtype=np.int8, offset=4 * n_tokens).reshape(n_tokens, dim)
    if not np.isfinite(scales).all():
        raise CorruptIndexError("int8 payload has non-finite scales")
    return values, scales


def dequantize_int8(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 vectors from int8 values and per-token scales."""
    return values.astype(np.float32) * scales[:, None]
