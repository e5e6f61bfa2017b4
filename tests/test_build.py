"""Built (compressed, PLAID-pruned) indexes: build, search, add/delete after build."""

from __future__ import annotations

import apsw
import numpy as np
import pytest
from fakes import HashEncoder

import lateint_lite as li
from lateint_lite import ivf, maintenance
from lateint_lite.errors import CorruptIndexError, EmptyIndexError, InternalError, InvalidInputError

DIM = 32


def clustered_docs(seed=0, n_docs=240, n_topics=30):
    """Documents whose tokens sit near a few topic centres (like real token clouds)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_topics * 4, DIM)).astype(np.float32)
    docs = []
    for i in range(n_docs):
        topics = rng.choice(n_topics * 4, size=3, replace=False)
        n = int(rng.integers(5, 40))
        vecs = centers[rng.choice(topics, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
        docs.append({"id": f"d{i}", "text": f"document {i}", "vectors": vecs, "meta": {"n": i}})
    return docs, centers


def queries_from(docs, rng, count=12):
    out = []
    for _ in range(count):
        doc = docs[int(rng.integers(0, len(docs)))]
        rows = rng.choice(len(doc["vectors"]), size=min(6, len(doc["vectors"])), replace=False)
        out.append(doc["vectors"][rows] + 0.1 * rng.standard_normal((len(rows), DIM)).astype(np.float32))
    return out


@pytest.fixture
def built(index_path):
    docs, _ = clustered_docs()
    idx = li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False)
    idx.add(docs)
    report = idx.build(nbits=2, residual_dim=16, seed=1)
    yield idx, docs, report
    idx.close()


def stored_lists(idx):
    """Every segment's stored lists, tombstoned entries left out, as one centroid -> ids map."""
    store = idx._store
    lists: dict[int, list[int]] = {}
    for segment in store.segments():
        dead = set(store.tombstoned_doc_ids(segment.segment_id).tolist())
        for c, blob in store.segment_list_rows(segment.segment_id).items():
            lists.setdefault(c, []).extend(d for d in ivf.decode_one(blob).tolist() if d not in dead)
    return {c: sorted(ids) for c, ids in lists.items() if ids}


def lists_from_codes(idx):
    store = idx._store
    pairs = [(d, np.frombuffer(c, dtype="<u2")) for d, _, c in store.iter_codes()]
    return {c: ids.tolist() for c, ids in ivf.group_by_centroid(pairs).items()}


def test_build_reports_and_compresses(built):
    idx, docs, report = built
    info = idx.info()
    assert idx.is_built and info.codec == "residual"
    assert report.nbits == 2 and report.residual_dim == 16
    assert report.bytes_per_token == 16 * 2 // 8 + 2
    assert info.bytes_per_token == pytest.approx(6.0)
    assert info.n_centroids == report.n_centroids > 1
    assert info.documents == len(docs)
    assert 0.0 < report.centroid_cosine <= 1.0 and info.centroid_cosine == report.centroid_cosine


def test_keep_everything_pruning_equals_exhaustive(built):
    idx, docs, report = built
    rng = np.random.default_rng(5)
    for query in queries_from(docs, rng):
        exact = idx.search_vectors(query, k=15, exact=True)
        pruned = idx.search_vectors(
            query, k=15, ncells=report.n_centroids, threshold=float("-inf"), ndocs=4 * len(docs)
        )
        assert [h.id for h in pruned] == [h.id for h in exact]
        np.testing.assert_allclose([h.score for h in pruned], [h.score for h in exact], rtol=1e-5)


def test_default_pruning_finds_the_source_document(built):
    idx, docs, _ = built
    rng = np.random.default_rng(6)
    found = 0
    for _ in range(20):
        i = int(rng.integers(0, len(docs)))
        query = docs[i]["vectors"][:5]
        found += idx.search_vectors(query, k=10)[0].id == docs[i]["id"]
    assert found >= 18


def test_compressed_scores_track_float_scores(built):
    idx, docs, _ = built
    rng = np.random.default_rng(7)
    query = queries_from(docs, rng, 1)[0]
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    float_scores = {}
    for d in docs:
        v = d["vectors"] / np.linalg.norm(d["vectors"], axis=1, keepdims=True)
        float_scores[d["id"]] = float((qn @ v.T).max(axis=1).sum())
    for hit in idx.search_vectors(query, k=10, exact=True):
        assert hit.score == pytest.approx(float_scores[hit.id], abs=0.08 * len(query))


def test_stored_lists_match_codes_after_build_add_and_delete(built):
    idx, docs, _ = built
    assert stored_lists(idx) == lists_from_codes(idx)
    new_docs, _ = clustered_docs(seed=9, n_docs=15)
    for d in new_docs:
        d["id"] = "new-" + d["id"]
    idx.add(new_docs)
    assert stored_lists(idx) == lists_from_codes(idx)
    idx.delete(["d0", "d5", "new-d3"])
    assert stored_lists(idx) == lists_from_codes(idx)
    hit = idx.search_vectors(new_docs[7]["vectors"][:6], k=1)[0]
    assert hit.id == "new-d7"
    assert all(h.id not in {"d0", "d5", "new-d3"} for h in idx.search_vectors(docs[0]["vectors"], k=50))


def test_rebuild_retrains_and_keeps_results_close(built):
    idx, docs, _ = built
    rng = np.random.default_rng(8)
    queries = queries_from(docs, rng, 8)
    before = [[h.id for h in idx.search_vectors(q, k=5, exact=True)] for q in queries]
    report = idx.build(nbits=4, residual_dim=16, seed=2, vectors={d["id"]: d["vectors"] for d in docs})
    assert report.nbits == 4 and not report.lossy
    after = [[h.id for h in idx.search_vectors(q, k=5, exact=True)] for q in queries]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(before, after, strict=True)])
    assert overlap >= 0.8
    assert stored_lists(idx) == lists_from_codes(idx)


def test_failed_build_leaves_the_index_unbuilt(index_path, monkeypatch):
    docs, _ = clustered_docs(n_docs=50)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)
        query = docs[3]["vectors"][:4]
        before = [h.id for h in idx.search_vectors(query, k=5)]

        def explode(*args, **kwargs):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr("lateint_lite.codecs.residual.ResidualCodec.encode", explode)
        with pytest.raises(InternalError, match="disk on fire") as caught:
            idx.build()
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert not idx.is_built
        assert [h.id for h in idx.search_vectors(query, k=5)] == before
        assert [idx._store.segment_list_rows(s.segment_id) for s in idx._store.segments()] == [{}]


def test_auto_build_after_enough_tokens(index_path, monkeypatch):
    monkeypatch.setattr(maintenance, "AUTO_BUILD_TOKENS", 1000)
    docs, _ = clustered_docs(n_docs=60)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM)) as idx:
        idx.add(docs[:5])
        assert not idx.is_built
        idx.add(docs[5:])
        assert idx.is_built


def test_build_options_are_validated(index_path):
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        with pytest.raises(EmptyIndexError):
            idx.build()
        idx.add(clustered_docs(n_docs=20)[0])
        bad_options = (
            {"nbits": 3},
            {"residual_dim": 0},
            {"residual_dim": DIM + 1},
            {"n_centroids": 0},
            {"residual_dim": 5, "nbits": 1},
            {"seed": -1},
            {"nbits": 2.0},
            {"pool_factor": 0},
            {"bogus": 1},
        )
        for bad in bad_options:
            with pytest.raises(InvalidInputError):
                idx.build(**bad)


def test_search_parameters_are_validated(built):
    idx, docs, _ = built
    query = docs[0]["vectors"][:3]
    for bad in ({"ncells": 0}, {"ndocs": -1}, {"threshold": float("nan")}, {"ncells": 1.5}):
        with pytest.raises(InvalidInputError):
            idx.search_vectors(query, k=5, **bad)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE segment_lists SET doc_ids = x'05ff' WHERE centroid_id = (SELECT min(centroid_id) FROM segment_lists)",
        "UPDATE doc_tokens SET codes = x'ffff' || substr(codes, 3) WHERE doc_id = 1",
        "UPDATE doc_tokens SET codes = substr(codes, 3) WHERE doc_id = 2",
        "UPDATE codec_arrays SET shape = '3,3' WHERE name = 'bucket_weights'",
        "DELETE FROM centroids WHERE rowid = 1",
    ],
)
def test_damaged_files_are_reported_not_crashed(built, index_path, damage):
    import sqlite_vec

    _, docs, _ = built
    conn = apsw.Connection(str(index_path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(damage)
    conn.close()
    with li.open(index_path, encoder=HashEncoder(dim=DIM)) as other, pytest.raises(CorruptIndexError):
        other.search_vectors(docs[0]["vectors"][:3], k=5)


def test_token_pooling_halves_tokens_and_applies_to_later_adds(index_path):
    docs, _ = clustered_docs(n_docs=120)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs[:100])
        before = idx.info().tokens
        report = idx.build(residual_dim=16, pool_factor=2)
        assert report.pool_factor == 2 and idx.pool_factor == 2
        after = idx.info().tokens
        assert after == sum(max(1, -(-len(d["vectors"]) // 2)) for d in docs[:100])
        assert after < 0.6 * before
        idx.add(docs[100:])
        assert idx.get("d110").n_tokens == max(1, -(-len(docs[110]["vectors"]) // 2))
        assert stored_lists(idx) == lists_from_codes(idx)
        hit = idx.search_vectors(docs[110]["vectors"][:6], k=1)[0]
        assert hit.id == "d110"
        with pytest.raises(InvalidInputError, match="already pooled"):
            idx.build(pool_factor=3, lossy=True)
        idx.build(residual_dim=16, vectors={d["id"]: d["vectors"] for d in docs})  # keeps the factor, pools once
        assert idx.info().tokens == after + sum(idx.get(f"d{i}").n_tokens for i in range(100, 120))


def test_failed_compaction_after_commit_does_not_fail_the_build(index_path, monkeypatch, caplog):
    from lateint_lite.errors import LateIntError

    docs, _ = clustered_docs(n_docs=60)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)

        def no_space():
            raise LateIntError("compaction (VACUUM) failed: database or disk is full")

        monkeypatch.setattr(idx._store, "compact", no_space)
        monkeypatch.setattr(maintenance, "COMPACT_FREE_FRACTION", -1.0)  # always compact
        with caplog.at_level("INFO", logger="lateint_lite"):
            report = idx.build(residual_dim=16)
        assert idx.is_built and report.compact_error and "disk is full" in report.compact_error
        assert report.compact_seconds is None
        assert any("built 60 documents" in r.getMessage() for r in caplog.records)
        assert any("compaction skipped" in r.getMessage() for r in caplog.records)
        optimized = idx.optimize()
        assert optimized.action == "lists rebuilt" and optimized.compact_error


def test_warm_up_loads_the_resident_state(built):
    idx, docs, _ = built
    idx.warm_up()
    assert idx._cache._resident is not None
    assert idx.search_vectors(docs[4]["vectors"][:5], k=1)[0].id == "d4"
    assert idx.config.codec.kind == "residual" and idx.config.build.documents == len(docs)


def test_reencode_chunks_are_bounded_by_tokens_and_documents(monkeypatch):
    from lateint_lite import builder

    monkeypatch.setattr(builder, "REENCODE_CHUNK_TOKENS", 100)
    monkeypatch.setattr(builder, "REENCODE_CHUNK_DOCS", 3)
    counts = [(1, 40), (2, 40), (3, 40), (4, 250), (5, 10), (6, 10), (7, 10), (8, 10)]
    chunks = list(builder._token_chunks(counts))
    assert chunks == [[1, 2], [3], [4], [5, 6, 7], [8]]  # a long document is a chunk of its own
    assert [d for c in chunks for d in c] == [d for d, _ in counts]


def test_the_training_sample_is_read_into_one_matrix_even_when_a_source_yields_more(monkeypatch):
    from lateint_lite import builder
    from lateint_lite.passages import DocumentTokens

    monkeypatch.setattr(builder, "SAMPLE_READ_DOCS", 2)
    rng = np.random.default_rng(0)
    vectors = {d: rng.standard_normal((n, 4)).astype(np.float32) for d, n in ((1, 3), (2, 5), (3, 2), (4, 7))}

    class Source:
        yields_int8_rows = False

        def vectors(self, ids):
            return [DocumentTokens.whole(vectors[d]) for d in ids]

    # the stored counts say 9 tokens; the source (a text re-encode, say) gives 17
    points, by_doc = builder._read_sample(Source(), [1, 2, 3, 4], 4, expected_tokens=9)
    matrix = points.values
    assert matrix.shape == (17, 4) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, np.concatenate([vectors[d] for d in (1, 2, 3, 4)]))
    for d, doc in by_doc.items():
        np.testing.assert_array_equal(doc.vectors, vectors[d])
        assert np.shares_memory(doc.vectors, matrix)  # views, not copies


def test_a_sample_of_stored_int8_tokens_is_kept_as_int8_and_gives_the_same_codec(tmp_path, fake_encoder):
    """Before the first build the sample holds the stored tokens' int8 values (a quarter of
    float32); their unit rows are the stored vectors bit for bit, so the codec trained on them is
    the one the float32 sample gives."""
    from lateint_lite import builder
    from lateint_lite.clustering import TrainingPoints
    from lateint_lite.codecs import train_residual_codec
    from lateint_lite.origins import VectorSource

    docs = [{"id": f"d{i}", "text": f"tides moon harbour {i} " * (1 + i % 9)} for i in range(300)]
    with li.open(tmp_path / "s.lateint", create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(docs)
        store, state = idx._store, idx._cache.current()
        source = VectorSource(store, state.codec, current_pool=1, target_pool=1, encoder=lambda: fake_encoder)
        assert source.yields_int8_rows
        counts = store.doc_token_counts()
        with store.snapshot():
            sample, heldout, cached = builder.draw_sample(counts, source, state.config.dim, 800, 400, 0)
            ids = [d for d, _ in counts]
            stored = np.concatenate([doc.vectors for doc in source.vectors(ids)])
    assert sample.values.dtype == np.int8 and heldout.values.dtype == np.int8 and cached == {}
    floats = sample.take(slice(None))
    assert any((floats == row).all(axis=1).any() for row in stored[:5])  # rows of stored tokens
    options = {"n_centroids": 32, "nbits": 2, "residual_dim": 8, "seed": 0}
    compact = train_residual_codec(sample, heldout, **options)
    plain = train_residual_codec(TrainingPoints(floats), TrainingPoints(heldout.take(slice(None))), **options)
    for name in ("centroids", "coarse", "group_offsets"):
        np.testing.assert_array_equal(getattr(compact.codebook, name), getattr(plain.codebook, name))
    for name in ("basis", "cutoffs", "weights"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(plain, name))


def test_a_build_reads_without_the_memory_map_and_restores_it(tmp_path, monkeypatch):
    from lateint_lite.store import MMAP_BYTES, Store

    seen = []
    real_unmapped = Store.unmapped

    def spying(self):
        seen.append("unmapped")
        return real_unmapped(self)

    monkeypatch.setattr(Store, "unmapped", spying)
    with li.open(tmp_path / "m.lateint", create=True, encoder=HashEncoder()) as idx:
        idx.add([{"id": str(i), "text": f"tide moon ocean wave number {i}"} for i in range(60)])
        store = idx._store
        with store.unmapped():
            assert store._scalar("PRAGMA mmap_size") == 0
        idx.build(n_centroids=8, seed=0)
        assert seen.count("unmapped") == 2  # the block above and the build
        assert store._scalar("PRAGMA mmap_size") == MMAP_BYTES
        assert idx.search("moon", k=3)


def test_builds_give_freed_memory_back(tmp_path, monkeypatch):
    from lateint_lite import memory

    calls = []
    monkeypatch.setattr(maintenance, "return_freed_memory", lambda: calls.append(1) or True)
    with li.open(tmp_path / "t.lateint", create=True, encoder=HashEncoder()) as idx:
        idx.add([{"id": str(i), "text": f"tide moon ocean wave {i}"} for i in range(40)])
        idx.build(n_centroids=8, seed=0)
        idx.optimize()
    assert len(calls) == 2
    assert memory.return_freed_memory() is True  # glibc here (Linux CI); a no-op returning False elsewhere


def test_a_first_automatic_build_releases_the_model_the_index_loaded(tmp_path, monkeypatch, fake_encoder):
    """The first build reads the stored int8 tokens, never the model: the model the index loaded
    itself is dropped before it (and loaded again by the next search); a caller's encoder stays."""
    from lateint_lite import maintenance
    from lateint_lite.binding import EncoderBinding

    monkeypatch.setattr(maintenance, "AUTO_BUILD_TOKENS", 2_000)
    loads = []

    def load(self):
        loads.append(1)
        return fake_encoder

    path = tmp_path / "auto.lateint"
    with li.open(path, create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add([{"id": "first", "text": "tides and the moon"}])
    monkeypatch.setattr(EncoderBinding, "_load", load)
    docs = [{"id": f"d{i}", "text": f"harbour tides moon {i} " * 8} for i in range(150)]
    with li.open(path) as idx:
        idx.add(docs[:10])  # not due yet: the model stays
        assert loads == [1] and idx._encoder._encoder is not None
        idx.add(docs[10:])  # due: released, then built
        assert idx.info().codec == "residual" and idx._encoder._encoder is None
        assert idx.search("harbour tides 12", k=3)[0].id == "d12"
        assert loads == [1, 1]
    with li.open(path, encoder=fake_encoder) as idx:  # given by the caller: never released
        assert not idx._encoder.release() and idx._encoder._encoder is fake_encoder
