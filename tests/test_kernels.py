"""Numba kernels agree with their plain-numpy references (also with the JIT off)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lateint_lite import kernels
from lateint_lite.errors import CorruptIndexError, InvalidInputError


def random_docs(rng, n_docs, dim, min_len=1, max_len=40):
    lengths = rng.integers(min_len, max_len + 1, n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    vectors = rng.standard_normal((offsets[-1], dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, offsets


@pytest.mark.parametrize("n_query", [1, 3, 4, 7, 32])
@pytest.mark.parametrize("dim", [8, 33, 128])
def test_maxsim_f32_matches_reference(n_query, dim):
    rng = np.random.default_rng(n_query * 100 + dim)
    vectors, offsets = random_docs(rng, 57, dim)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    got = kernels.maxsim_f32(query, vectors, offsets)
    want = kernels.maxsim_f32_reference(query, vectors, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_query", [1, 5, 32])
def test_maxsim_int8_matches_reference(n_query):
    rng = np.random.default_rng(7 + n_query)
    dim = 48
    vectors, offsets = random_docs(rng, 40, dim)
    scales = (np.abs(vectors).max(axis=1) / 127).astype(np.float32)
    values = np.rint(vectors / scales[:, None]).astype(np.int8)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    got = kernels.maxsim_int8(query, values, scales, offsets)
    want = kernels.maxsim_int8_reference(query, values, scales, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_positions_select_documents_in_given_order():
    rng = np.random.default_rng(3)
    vectors, offsets = random_docs(rng, 20, 16)
    query = rng.standard_normal((6, 16)).astype(np.float32)
    positions = np.array([19, 0, 7, 7], dtype=np.int64)
    got = kernels.maxsim_f32(query, vectors, offsets, positions)
    full = kernels.maxsim_f32_reference(query, vectors, offsets)
    np.testing.assert_allclose(got, full[positions], rtol=1e-5, atol=1e-5)


def test_single_token_documents():
    rng = np.random.default_rng(4)
    vectors, offsets = random_docs(rng, 9, 12, min_len=1, max_len=1)
    query = rng.standard_normal((5, 12)).astype(np.float32)
    got = kernels.maxsim_f32(query, vectors, offsets)
    np.testing.assert_allclose(got, (query @ vectors.T).sum(axis=0), rtol=1e-5, atol=1e-5)


def test_bad_offsets_are_rejected_before_the_kernel():
    vectors = np.zeros((5, 4), dtype=np.float32)
    query = np.ones((1, 4), dtype=np.float32)
    for offsets in ([0, 3, 7], [1, 5], [0, 3, 3, 5], [0, 4, 2, 5]):
        with pytest.raises(CorruptIndexError):
            kernels.maxsim_f32(query, vectors, np.array(offsets, dtype=np.int64))


def test_bad_query_and_positions_are_rejected():
    vectors = np.zeros((5, 4), dtype=np.float32)
    offsets = np.array([0, 2, 5], dtype=np.int64)
    with pytest.raises(InvalidInputError):
        kernels.maxsim_f32(np.ones((1, 3), np.float32), vectors, offsets)
    with pytest.raises(InvalidInputError):
        kernels.maxsim_f32(np.ones((1, 4), np.float32), vectors, offsets, np.array([2]))
    with pytest.raises(InvalidInputError):
        kernels.maxsim_f32(np.ones((1, 4), np.float32), vectors, offsets, np.array([-1]))


def test_kernels_agree_with_references_with_jit_disabled():
    """The same comparisons with NUMBA_DISABLE_JIT=1 (a fresh interpreter)."""
    script = Path(__file__).with_name("test_kernels.py")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script), "-k", "not jit_disabled"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
