"""k-means, two-level codebooks and the residual codec on synthetic clustered data."""

from __future__ import annotations

import numpy as np
import pytest

from lateint_lite import kernels
from lateint_lite.clustering import plaid_centroid_count, spherical_kmeans, train_codebook
from lateint_lite.codecs import ResidualCodec, train_residual_codec
from lateint_lite.errors import CorruptIndexError, InvalidInputError
from lateint_lite.store import TokenRow


def train(sample, heldout, n_tokens, *, nbits, residual_dim):
    """Train with the centroid count the builder would choose for ``n_tokens``."""
    k = min(plaid_centroid_count(n_tokens), len(sample))
    return train_residual_codec(sample, heldout, n_centroids=k, nbits=nbits, residual_dim=residual_dim, seed=0)


def clustered(rng, n, dim, n_clusters, noise):
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = rng.integers(0, n_clusters, n)
    points = centers[labels] + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True), centers, labels


def test_plaid_centroid_count():
    assert plaid_centroid_count(1_242_251) == 16384  # SciFact
    assert plaid_centroid_count(1_000_000) == 8192
    assert plaid_centroid_count(10**10) == 65536  # capped: codes are uint16
    assert plaid_centroid_count(40) == 10  # never more than n/4
    assert plaid_centroid_count(1) == 8
    with pytest.raises(InvalidInputError):
        plaid_centroid_count(0)


def test_kmeans_is_deterministic_and_finds_planted_clusters():
    rng = np.random.default_rng(0)
    points, centers, _ = clustered(rng, 3000, 16, 8, 0.05)
    first = spherical_kmeans(points, 8, seed=3)
    np.testing.assert_array_equal(first, spherical_kmeans(points, 8, seed=3))
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # every planted centre has a learned centroid within cosine 0.99
    assert ((centers @ first.T).max(axis=1) > 0.99).all()


def test_two_level_codebook_assignment_is_near_exact():
    rng = np.random.default_rng(1)
    points, _, _ = clustered(rng, 5000, 24, 60, 0.2)
    book = train_codebook(points, 256, seed=0)
    assert book.size == 256
    book.validate()
    exact_codes, exact_best = kernels.nearest_centroids(points, book.centroids)
    probed = book.assign(points, probe=4)
    got = (points * book.centroids[probed]).sum(axis=1)
    assert (probed == exact_codes).mean() > 0.9
    assert got.mean() > exact_best.mean() - 0.01
    everything = book.assign(points, probe=book.coarse.shape[0])
    np.testing.assert_array_equal(everything, exact_codes)


@pytest.mark.parametrize("nbits,min_cosine", [(1, 0.83), (2, 0.93), (4, 0.985)])
def test_residual_codec_round_trip_error_bounds(nbits, min_cosine):
    """Noisy clusters (token-to-centroid cosine ~0.62); measured means 0.856 / 0.946 / 0.992."""
    rng = np.random.default_rng(nbits)
    points, _, _ = clustered(rng, 6000, 32, 40, 0.25)
    codec = train(points[:4000], points[4000:5000], 6000, nbits=nbits, residual_dim=None)
    codes, packed = codec.encode_tokens(points[5000:])
    decoded = codec.decode_tokens(codes, packed)
    cosine = (decoded * points[5000:]).sum(axis=1)
    centroid_only = (codec.codebook.centroids[codes.astype(np.int64)] * points[5000:]).sum(axis=1)
    assert cosine.mean() > min_cosine
    assert cosine.mean() > centroid_only.mean() + 0.2
    assert codec.bytes_per_token == 32 * nbits // 8 + 2


def test_more_bits_are_more_faithful():
    rng = np.random.default_rng(7)
    points, _, _ = clustered(rng, 6000, 32, 40, 0.3)
    errors = []
    for nbits in (1, 2, 4):
        codec = train(points[:4000], points[4000:5000], 6000, nbits=nbits, residual_dim=16)
        decoded = codec.decode_tokens(*codec.encode_tokens(points[5000:]))
        errors.append(float(np.linalg.norm(decoded - points[5000:], axis=1).mean()))
    assert errors[0] > errors[1] > errors[2]


def test_codec_survives_its_stored_form():
    rng = np.random.default_rng(3)
    points, _, _ = clustered(rng, 3000, 32, 20, 0.2)
    codec = train(points[:2000], points[2000:], 3000, nbits=2, residual_dim=16)
    values, rows = codec.to_stored()
    centroid_rows = [(i, values[i].tobytes()) for i in range(values.shape[0])]
    again = ResidualCodec.from_stored(centroid_rows, rows, codec.spec, 32)
    np.testing.assert_array_equal(codec.encode_tokens(points)[1], again.encode_tokens(points)[1])
    weights = next(r for r in rows if r[0] == "bucket_weights")
    broken = [r if r[0] != "bucket_weights" else (r[0], r[1], "16,3", r[3][: len(r[3]) * 3 // 4]) for r in rows]
    with pytest.raises(CorruptIndexError):
        ResidualCodec.from_stored(centroid_rows, broken, codec.spec, 32)
    with pytest.raises(CorruptIndexError):
        ResidualCodec.from_stored(centroid_rows, [r for r in rows if r[0] != "centroid_scales"], codec.spec, 32)
    with pytest.raises(CorruptIndexError):  # a damaged shape string
        damaged = [*rows[:-1], (weights[0], weights[1], "x", weights[3])]
        ResidualCodec.from_stored(centroid_rows, damaged, codec.spec, 32)
    with pytest.raises(CorruptIndexError):  # centroid rows not 0..K-1
        ResidualCodec.from_stored(centroid_rows[1:], rows, codec.spec, 32)


def test_split_checks_lengths_and_codes():
    rng = np.random.default_rng(4)
    points, _, _ = clustered(rng, 2000, 16, 10, 0.2)
    codec = train_residual_codec(points, points, n_centroids=16, nbits=2, residual_dim=None, seed=0)
    codes, packed = codec.encode_tokens(points[:5])
    codec.split(TokenRow(1, 5, codes.tobytes(), packed.tobytes()))
    with pytest.raises(CorruptIndexError):
        codec.split(TokenRow(1, 4, codes.tobytes(), packed.tobytes()))
    with pytest.raises(CorruptIndexError):
        codec.split(TokenRow(1, 5, codes.tobytes()[:-2], packed.tobytes()))
    bad = codes.copy()
    bad[0] = 999
    with pytest.raises(CorruptIndexError):
        codec.split(TokenRow(1, 5, bad.tobytes(), packed.tobytes()))


def test_codebook_and_assignment_do_not_depend_on_the_thread_count(monkeypatch):
    """Fine groups train side by side and assignment runs in blocks on threads: one thread gives
    the same bits (blocks small enough here that several run)."""
    from lateint_lite.kernels import _runtime, kmeans

    rng = np.random.default_rng(4)
    points, _, _ = clustered(rng, 6000, 24, 40, 0.2)
    monkeypatch.setattr(kmeans, "BLOCK_FLOATS", 300 * 24 * 4)  # 300-point blocks
    threaded = train_codebook(points, 200, seed=2)
    codes = threaded.assign(points)
    monkeypatch.setattr(_runtime, "thread_count", lambda: 1)
    alone = train_codebook(points, 200, seed=2)
    for name in ("centroids", "coarse", "group_offsets"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(alone, name))
    np.testing.assert_array_equal(codes, alone.assign(points))


def test_a_failing_block_raises_in_the_caller():
    from lateint_lite.kernels import in_threads

    def work(lo: int, hi: int) -> None:
        if lo >= 4:
            raise ValueError(f"block {lo}")

    with pytest.raises(ValueError, match="block"):
        in_threads(work, 10, 2)
