"""The int8 payload codec: round-trip error and length validation."""

from __future__ import annotations

import numpy as np
import pytest

from lateint_lite.codecs import int8 as codec
from lateint_lite.errors import CorruptIndexError


def test_int8_round_trip_error_is_within_half_a_step():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    values, scales = codec.decode_int8(codec.encode_int8(vectors), 50, 64)
    decoded = codec.dequantize_int8(values, scales)
    step = np.abs(vectors).max(axis=1, keepdims=True) / 127
    assert (np.abs(decoded - vectors) <= step / 2 + 1e-7).all()
    cosine = (decoded * vectors).sum(axis=1) / np.linalg.norm(decoded, axis=1)
    assert cosine.min() > 0.999


def test_zero_vector_survives():
    values, scales = codec.decode_int8(codec.encode_int8(np.zeros((2, 4))), 2, 4)
    assert (codec.dequantize_int8(values, scales) == 0).all()


@pytest.mark.parametrize("n_tokens,dim", [(3, 8), (4, 7), (0, 8)])
def test_payload_length_mismatch_is_corruption(n_tokens, dim):
    payload = codec.encode_int8(np.ones((4, 8), dtype=np.float32))
    with pytest.raises(CorruptIndexError):
        codec.decode_int8(payload, n_tokens, dim)


def test_non_finite_scales_are_corruption():
    payload = bytearray(codec.encode_int8(np.ones((1, 4), dtype=np.float32)))
    payload[0:4] = np.array([np.nan], dtype="<f4").tobytes()
    with pytest.raises(CorruptIndexError):
        codec.decode_int8(bytes(payload), 1, 4)
