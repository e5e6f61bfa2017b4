"""Kernels agree with their plain-numpy references (also with the JIT off); the read kernels
in both tiers (numba and lateint_lite.kernels.numpy_tier)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference

from lateint_lite import kernels
from lateint_lite.errors import CorruptIndexError, InvalidInputError


@pytest.fixture(params=kernels.KERNEL_TIERS)
def tier(request):
    """Run the test's read kernels in the numba tier, then in the numpy tier."""
    with kernels.tier_in_use(request.param):
        yield request.param


def random_docs(rng, n_docs, dim, min_len=1, max_len=40):
    lengths = rng.integers(min_len, max_len + 1, n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    vectors = rng.standard_normal((offsets[-1], dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, offsets


@pytest.mark.parametrize("n_query", [1, 3, 4, 7, 32])
@pytest.mark.parametrize("dim", [8, 33, 128])
def test_maxsim_f32_matches_reference(n_query, dim, tier):
    rng = np.random.default_rng(n_query * 100 + dim)
    vectors, offsets = random_docs(rng, 57, dim)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    got = kernels.maxsim_f32(query, vectors, offsets)
    want = reference.maxsim_f32_reference(query, vectors, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_query", [1, 5, 32])
def test_maxsim_int8_matches_reference(n_query, tier):
    rng = np.random.default_rng(7 + n_query)
    dim = 48
    vectors, offsets = random_docs(rng, 40, dim)
    scales = (np.abs(vectors).max(axis=1) / 127).astype(np.float32)
    values = np.rint(vectors / scales[:, None]).astype(np.int8)
    query = rng.standard_normal((n_query, dim)).astype(np.float32)
    got = kernels.maxsim_int8(query, values, scales, offsets)
    want = reference.maxsim_int8_reference(query, values, scales, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_positions_select_documents_in_given_order(tier):
    rng = np.random.default_rng(3)
    vectors, offsets = random_docs(rng, 20, 16)
    query = rng.standard_normal((6, 16)).astype(np.float32)
    positions = np.array([19, 0, 7, 7], dtype=np.int64)
    got = kernels.maxsim_f32(query, vectors, offsets, positions)
    full = reference.maxsim_f32_reference(query, vectors, offsets)
    np.testing.assert_allclose(got, full[positions], rtol=1e-5, atol=1e-5)


def test_single_token_documents(tier):
    rng = np.random.default_rng(4)
    vectors, offsets = random_docs(rng, 9, 12, min_len=1, max_len=1)
    query = rng.standard_normal((5, 12)).astype(np.float32)
    got = kernels.maxsim_f32(query, vectors, offsets)
    np.testing.assert_allclose(got, (query @ vectors.T).sum(axis=0), rtol=1e-5, atol=1e-5)


def test_bad_offsets_are_rejected_before_the_kernel(tier):
    vectors = np.zeros((5, 4), dtype=np.float32)
    query = np.ones((1, 4), dtype=np.float32)
    for offsets in ([0, 3, 7], [1, 5], [0, 3, 3, 5], [0, 4, 2, 5]):
        with pytest.raises(CorruptIndexError):
            kernels.maxsim_f32(query, vectors, np.array(offsets, dtype=np.int64))


def test_bad_query_and_positions_are_rejected(tier):
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


# -- PLAID kernels ----------------------------------------------------------------------


def unit_rows(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n,k,dim", [(1, 1, 4), (7, 5, 9), (130, 33, 16), (64, 128, 24)])
def test_nearest_centroids_matches_reference(n, k, dim):
    rng = np.random.default_rng(n + k)
    points, centroids = unit_rows(rng, n, dim), unit_rows(rng, k, dim)
    codes, best = kernels.nearest_centroids(points, centroids)
    ref_codes, ref_best = reference.nearest_centroids_reference(points, centroids)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_allclose(best, ref_best, atol=1e-5)


@pytest.mark.parametrize("n,m", [(1, 1), (5, 3), (32, 101)])
def test_dot_matrix_matches_numpy(n, m, tier):
    rng = np.random.default_rng(n * m)
    a, b = unit_rows(rng, n, 20), unit_rows(rng, m, 20)
    np.testing.assert_allclose(kernels.dot_matrix(a, b), a @ b.T, atol=1e-5)


def test_centroid_sums_match_reference():
    rng = np.random.default_rng(5)
    points = unit_rows(rng, 300, 8)
    codes = rng.integers(0, 10, 300)
    sums, counts = kernels.centroid_sums(points, codes, 12)
    ref_sums, ref_counts = reference.centroid_sums_reference(points, codes, 12)
    np.testing.assert_allclose(sums, ref_sums, atol=1e-5)
    np.testing.assert_array_equal(counts, ref_counts)


def test_top_per_row_matches_a_stable_sort():
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((300, 37)).astype(np.float32)
    scores[:20, 5:9] = scores[:20, 30:34] = 3.0  # ties: the lower id comes first
    for p in (1, 4, 37):
        np.testing.assert_array_equal(kernels.top_per_row(scores, p), reference.top_per_row_reference(scores, p))
    with pytest.raises(InvalidInputError):
        kernels.top_per_row(scores, 38)


def test_quantize_int8_matches_the_numpy_rounding_bit_for_bit():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((3000, 96)).astype(np.float32) * rng.random((3000, 1)).astype(np.float32) * 50
    vectors[0] = 0.0  # a zero row: scale 1, values 0
    vectors[1, :] = 1e-30  # tiny values
    vectors[2, :3] = [127.0, 63.5, -0.5]  # halves round to even
    values, scales = kernels.quantize_int8(vectors)
    ref_values, ref_scales = reference.quantize_int8_reference(vectors)
    np.testing.assert_array_equal(values, ref_values)
    assert scales.tobytes() == ref_scales.tobytes()
    assert kernels.quantize_int8(np.zeros((0, 4), np.float32))[0].shape == (0, 4)


@pytest.mark.parametrize("dim", [1, 7, 8, 13, 96, 128, 129, 200, 384, 1000])
def test_canonical_kernels_match_the_numpy_formulas_bit_for_bit(dim):
    """Row norms summed in numpy's pairwise order: every dimension shape of that order (under
    8, one block of 128, splits at multiples of 8 with remainders)."""
    rng = np.random.default_rng(dim)
    vectors = rng.standard_normal((2000, dim)).astype(np.float32) * rng.uniform(1e-6, 1e4, (2000, 1)).astype(np.float32)
    vectors[0] = 0.0
    vectors[1] = 1e-30
    values = kernels.canonical_int8(vectors)
    np.testing.assert_array_equal(values, reference.canonical_int8_reference(vectors))
    assert kernels.unit_rows_int8(values).tobytes() == reference.unit_rows_int8_reference(values).tobytes()
    extremes = np.full((2, dim), 127, dtype=np.int8)
    extremes[1, ::2] = -127
    assert kernels.unit_rows_int8(extremes).tobytes() == reference.unit_rows_int8_reference(extremes).tobytes()
    assert kernels.canonical_int8(np.zeros((0, dim), np.float32)).shape == (0, dim)
    with pytest.raises(InvalidInputError):
        kernels.unit_rows_int8(np.zeros(dim, np.int8))


def test_centroid_best_is_each_rows_max(tier):
    rng = np.random.default_rng(4)
    for shape in [(1, 1), (7, 1), (1000, 32), (65, 3)]:
        scores = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(kernels.centroid_best(scores), scores.max(axis=1))
    for bad in (np.zeros((4, 0), np.float32), np.zeros(4, np.float32)):
        with pytest.raises(InvalidInputError):
            kernels.centroid_best(bad)


def test_dot_matrix_blocks_over_threads_match_one_product():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((10_001, 24)).astype(np.float32), rng.standard_normal((5, 24)).astype(np.float32)
    np.testing.assert_allclose(kernels.numba_kernel("dot_matrix")(a, b), a @ b.T, rtol=1e-6, atol=1e-5)
    assert kernels.numba_kernel("dot_matrix")(a[:0], b).shape == (0, 5)


def test_document_means_match_numpy_mean_bit_for_bit():
    rng = np.random.default_rng(9)
    counts = np.array([1, 2, 7, 8, 9, 100, 129, 1000, 3], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    vectors = rng.standard_normal((int(offsets[-1]), 96)).astype(np.float32) * 3
    got = kernels.document_means(vectors, offsets)
    assert got.tobytes() == reference.document_means_reference(vectors, offsets).tobytes()
    with pytest.raises(CorruptIndexError):
        kernels.document_means(vectors, np.array([0, 0, int(offsets[-1])], dtype=np.int64))


@pytest.mark.parametrize("probe", [1, 2, 4])
def test_nearest_in_groups_matches_reference(probe):
    rng = np.random.default_rng(probe)
    points, coarse, fine = unit_rows(rng, 200, 12), unit_rows(rng, 6, 12), unit_rows(rng, 40, 12)
    offsets = np.array([0, 5, 9, 20, 21, 33, 40], dtype=np.int64)
    got = kernels.nearest_in_groups(points, coarse, fine, offsets, probe)
    want = reference.nearest_in_groups_reference(points, coarse, fine, offsets, probe)
    np.testing.assert_array_equal(got, want)
    every = kernels.nearest_in_groups(points, coarse, fine, offsets, 6)
    np.testing.assert_array_equal(every, reference.nearest_centroids_reference(points, fine)[0])


@pytest.mark.parametrize("probe", [1, 3, 5])
def test_nearest_in_groups_with_tied_centroids(probe):
    """Groups whose coarse centroids are copies of each other and fine centroids repeated within
    a group: ties go to the better coarse level, then to the lower code, as the reference scans
    them. (A copy in another group is scored by another product, whose float rounding may differ.)"""
    rng = np.random.default_rng(40 + probe)
    points, coarse, fine = unit_rows(rng, 700, 16), unit_rows(rng, 9, 16), unit_rows(rng, 60, 16)
    coarse[4] = coarse[1]  # groups 1 and 4 tie for every point
    fine[5:8] = fine[3]  # a code repeated inside group 0 (one product scores them: exact ties)
    offsets = np.array([0, 8, 16, 22, 30, 31, 41, 50, 55, 60], dtype=np.int64)
    got = kernels.nearest_in_groups(points, coarse, fine, offsets, probe)
    np.testing.assert_array_equal(got, reference.nearest_in_groups_reference(points, coarse, fine, offsets, probe))
    top = kernels.top_per_row(points @ coarse.T, probe)  # the row form of the coarse choice agrees
    np.testing.assert_array_equal(top, reference.top_per_row_reference(points @ coarse.T, probe))


@pytest.mark.parametrize("nbits", [1, 2, 4])
@pytest.mark.parametrize("projected", [False, True])
def test_residual_encode_decode_match_references(nbits, projected, tier):
    rng = np.random.default_rng(nbits)
    dim, r = 24, (16 if projected else 24)
    vectors, centroids = unit_rows(rng, 90, dim), unit_rows(rng, 7, dim)
    codes = rng.integers(0, 7, 90)
    basis = np.linalg.qr(rng.standard_normal((dim, r)))[0].astype(np.float32) if projected else None
    levels = 1 << nbits
    cutoffs = np.sort(rng.standard_normal((r, levels - 1)).astype(np.float32), axis=1)
    weights = np.sort(rng.standard_normal((r, levels)).astype(np.float32), axis=1)
    packed = kernels.encode_residuals(vectors, codes, centroids, basis, cutoffs, nbits)
    np.testing.assert_array_equal(
        packed, reference.encode_residuals_reference(vectors, codes, centroids, basis, cutoffs, nbits)
    )
    np.testing.assert_array_equal(
        kernels.decode_residuals(packed, weights, nbits), reference.decode_residuals_reference(packed, weights, nbits)
    )


@pytest.mark.parametrize("n_query", [1, 4, 7])
@pytest.mark.parametrize("projected", [False, True])
def test_maxsim_residual_equals_decode_then_maxsim(n_query, projected, tier):
    rng = np.random.default_rng(n_query)
    dim, r, nbits = 16, (8 if projected else 16), 2
    centroids = unit_rows(rng, 11, dim)
    n_docs = 23
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(rng.integers(1, 9, n_docs), out=offsets[1:])
    codes = rng.integers(0, 11, offsets[-1]).astype(np.uint16)
    packed = rng.integers(0, 256, (offsets[-1], r * nbits // 8)).astype(np.uint8)
    weights = (0.2 * rng.standard_normal((r, 4))).astype(np.float32)
    basis = np.linalg.qr(rng.standard_normal((dim, r)))[0].astype(np.float32) if projected else None
    query = unit_rows(rng, n_query, dim)
    q_basis = query if basis is None else query @ basis
    c_basis = centroids if basis is None else centroids @ basis
    got = kernels.maxsim_residual(
        q_basis,
        (centroids @ query.T).astype(np.float32),
        codes,
        packed,
        kernels.bucket_lut(weights, nbits),
        c_basis.astype(np.float32),
        (centroids**2).sum(axis=1).astype(np.float32),
        offsets,
    )
    want = reference.maxsim_residual_reference(query, centroids, basis, codes, packed, weights, nbits, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_centroid_maxsim_matches_reference_with_pruning(tier):
    rng = np.random.default_rng(9)
    scores = rng.uniform(-1, 1, (5, 30)).astype(np.float32)
    offsets = np.array([0, 3, 4, 10, 18], dtype=np.int64)
    codes = rng.integers(0, 30, 18).astype(np.uint16)
    positions = np.array([3, 0, 2], dtype=np.int64)
    keep = scores.max(axis=0) >= 0.6
    for mask in (None, keep):
        got = kernels.centroid_maxsim(np.ascontiguousarray(scores.T), codes, offsets, positions, mask)
        want = reference.centroid_maxsim_reference(scores, codes, offsets, positions, mask)
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_gather_candidates_is_the_union_of_lists(tier):
    offsets = np.array([0, 2, 2, 5, 6], dtype=np.int64)
    values = np.array([4, 1, 0, 1, 3, 9], dtype=np.int64)
    got = kernels.gather_candidates(np.array([0, 2]), offsets, values, 10)
    np.testing.assert_array_equal(got, [0, 1, 3, 4])
    with pytest.raises(InvalidInputError):
        kernels.gather_candidates(np.array([4]), offsets, values, 10)


def test_varint_lists_round_trip_and_reject_damage(tier):
    rows = [np.array([0, 1, 127, 128, 300_000, 2**40]), np.array([], dtype=np.int64), np.array([5])]
    offsets, values = kernels.varint_decode_lists([kernels.varint_encode(r) for r in rows], 2**41)
    np.testing.assert_array_equal(offsets, [0, 6, 6, 7])
    np.testing.assert_array_equal(values, np.concatenate(rows))
    good = kernels.varint_encode(rows[0])
    for damaged in (good[:-1], good + b"\x00", b"\x02\x05\x00", b"\xff" * 12, b"\x01\x85"):
        with pytest.raises(CorruptIndexError):
            kernels.varint_decode_lists([damaged], 2**41)
    with pytest.raises(CorruptIndexError):
        kernels.varint_decode_lists([good], 10)
    with pytest.raises(InvalidInputError):
        kernels.varint_encode(np.array([3, 3]))


def test_residual_kernels_reject_bad_codes_and_layouts(tier):
    weights = np.zeros((8, 4), np.float32)
    with pytest.raises(CorruptIndexError):
        kernels.decode_residuals(np.zeros((3, 3), np.uint8), weights, 2)
    with pytest.raises(CorruptIndexError):
        kernels.maxsim_residual(
            np.ones((1, 8), np.float32),
            np.ones((4, 1), np.float32),
            np.array([0, 9], np.uint16),
            np.zeros((2, 2), np.uint8),
            kernels.bucket_lut(weights, 2),
            np.zeros((4, 8), np.float32),
            np.ones(4, np.float32),
            np.array([0, 2], np.int64),
        )


@pytest.mark.parametrize("trials", [None, 1])
def test_kmeanspp_seeds_match_reference(trials):
    rng = np.random.default_rng(11)
    points = unit_rows(rng, 500, 8)
    got = kernels.kmeanspp_seeds(points, 12, seed=4, trials=trials)
    np.testing.assert_array_equal(got, reference.kmeanspp_seeds_reference(points, 12, seed=4, trials=trials))
    assert len(set(got.tolist())) == 12


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_pool_documents_matches_reference(factor):
    rng = np.random.default_rng(factor)
    vectors, offsets = random_docs(rng, 12, 16, min_len=1, max_len=30)
    got, got_offsets = kernels.pool_documents(vectors, offsets, factor)
    want, want_offsets = reference.pool_documents_reference(vectors, offsets, factor)
    np.testing.assert_array_equal(got_offsets, want_offsets)
    np.testing.assert_allclose(got, want, atol=1e-5)
    lengths = np.diff(offsets)
    np.testing.assert_array_equal(np.diff(got_offsets), np.maximum(1, -(-lengths // factor)))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
