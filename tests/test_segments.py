"""Segments: merge policy, tombstones, incremental refresh, and search over many segments
against an oracle that recomputes one index's lists from the stored codes."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fakes import HashEncoder
from test_build import DIM, clustered_docs, queries_from

import lateint_lite as li
from lateint_lite import ivf, maintenance, segments
from lateint_lite.codecs import CodeMatrix, PruningIndex
from lateint_lite.errors import InternalError
from lateint_lite.search import PruningParams, plaid_search
from lateint_lite.store import SegmentRow

# -- merge policy ----------------------------------------------------------------------------


def rows(*live: int) -> list[SegmentRow]:
    return [SegmentRow(i + 1, 100 * i, 100 * i + 99, n) for i, n in enumerate(live)]


def test_levels_are_orders_of_magnitude_above_the_floor():
    floor, factor = segments.FLOOR_DOCS, segments.MERGE_FACTOR
    assert [segments.level(n) for n in (0, 1, floor - 1)] == [0, 0, 0]
    assert [segments.level(n) for n in (floor, floor * factor - 1, floor * factor)] == [1, 1, 2]


def test_merges_are_due_for_runs_of_merge_factor_adjacent_segments_on_one_level():
    factor = segments.MERGE_FACTOR
    small = [1] * (factor - 1)
    assert segments.merges_due(rows(*small)) == []
    due = segments.merges_due(rows(*small, 5))
    assert [[s.segment_id for s in run] for run in due] == [list(range(1, factor + 1))]
    big = segments.FLOOR_DOCS * 5
    # a big segment between small ones breaks the run: only adjacent segments merge
    mixed = rows(*[1] * (factor // 2), big, *[1] * (factor // 2))
    assert segments.merges_due(mixed) == []


# -- search over segments equals one index with lists recomputed from codes -----------------


def oracle_pruning(idx: li.Index) -> PruningIndex:
    """One pruning index over every stored document, lists grouped afresh from the codes (not
    through any segment or merge code)."""
    store = idx._store
    codec = idx._cache.current().codec
    code_rows = list(store.iter_codes())
    doc_ids = np.asarray([r.doc_id for r in code_rows], dtype=np.int64)
    counts = [r.n_tokens for r in code_rows]
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    codes = np.frombuffer(b"".join(r.codes for r in code_rows), dtype="<u2").astype(np.uint16)
    position_of = np.full(int(doc_ids.max()) + 1, -1, dtype=np.int64)
    position_of[doc_ids] = np.arange(doc_ids.size)
    matrix = CodeMatrix(doc_ids=doc_ids, offsets=offsets, codes=codes, position_of=position_of)
    grouped = ivf.postings_of((int(r.doc_id), codec.cells(r)) for r in code_rows)
    lists = ivf.decode_rows(ivf.encode_postings(grouped), codec.n_centroids, int(doc_ids.max()))
    return PruningIndex(codes=matrix, lists=lists.to_positions(position_of))


def oracle_search(idx: li.Index, query: np.ndarray, k: int, params: PruningParams) -> list[tuple[str, float]]:
    store = idx._store
    with store.snapshot():
        codec = idx._cache.current().codec
        prepared = codec.prepare(query / np.linalg.norm(query, axis=1, keepdims=True))

        def fetch(doc_ids):
            return codec.read_rows(store.token_payloads(doc_ids.tolist()))

        doc_ids, scores = plaid_search(codec, prepared, [(oracle_pruning(idx), None)], k, params, fetch)
        names = store.documents_by_doc_ids(doc_ids.tolist())
        return [(names[d].ext_id, float(s)) for d, s in zip(doc_ids.tolist(), scores.tolist(), strict=True)]


def ranking(hits) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def assert_same(got, want):
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_many_segments_answer_like_one_index_with_recomputed_lists(index_path, monkeypatch, seed):
    """Random adds, upserts and deletes (small segments, merges with factor 3), after each:
    the writer's index, a long-lived reader refreshing incrementally and a fresh open all
    return exactly what PLAID returns over one index whose lists are regrouped from codes."""
    monkeypatch.setattr(segments, "MERGE_FACTOR", 3)
    monkeypatch.setattr(segments, "FLOOR_DOCS", 8)
    monkeypatch.setattr(maintenance, "RETRAIN_GROWTH", 100.0)  # optimize() below merges, never retrains
    rng = np.random.default_rng(seed)
    docs, _ = clustered_docs(seed=seed, n_docs=400)
    queries = queries_from(docs, rng, 4)
    params = [PruningParams.for_k(5), PruningParams(ncells=1, threshold=0.5, ndocs=16)]
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs[:120])
        idx.build(n_centroids=32, residual_dim=16, seed=0)
        reader = li.open(index_path, encoder=HashEncoder(dim=DIM), readonly=True)
        next_doc, live = 120, [d["id"] for d in docs[:120]]
        for _step in range(14):
            action = rng.choice(["add", "add", "upsert", "delete"])
            if action == "add" and next_doc < len(docs):
                n = int(rng.integers(1, 30))
                idx.add(docs[next_doc : next_doc + n])
                live += [d["id"] for d in docs[next_doc : next_doc + n]]
                next_doc += n
            elif action == "upsert":
                chosen = rng.choice(len(live), 5, replace=False)
                idx.upsert(
                    [{**docs[int(live[i][1:])], "vectors": docs[int(live[i][1:])]["vectors"][::-1]} for i in chosen]
                )
            else:
                gone = {live[i] for i in rng.choice(len(live), 7, replace=False)}
                idx.delete(sorted(gone))
                live = [d for d in live if d not in gone]
            with li.open(index_path, encoder=HashEncoder(dim=DIM), readonly=True) as fresh:
                for query in queries:
                    for p in params:
                        want = oracle_search(idx, query, 5, p)
                        options = {"k": 5, "ncells": p.ncells, "threshold": p.threshold, "ndocs": p.ndocs}
                        for index in (idx, reader, fresh):
                            assert_same(ranking(index.search_vectors(query, highlight=False, **options)), want)
        assert len(idx._store.segments()) > 1 and idx.check().ok
        exact = ranking(idx.search_vectors(queries[0], k=5, exact=True, highlight=False))
        idx.optimize()
        assert len(idx._store.segments()) == 1
        assert_same(ranking(reader.search_vectors(queries[0], k=5, exact=True, highlight=False)), exact)
        reader.close()


def test_unbuilt_index_searches_segments_with_tombstones(index_path):
    docs, _ = clustered_docs(n_docs=60)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        for start in range(0, 60, 10):
            idx.add(docs[start : start + 10])
        idx.delete(["d3", "d25", "d59"])
        assert [s.tombstones for s in idx._store.segments()] == [1, 0, 1, 0, 0, 1]
        query = docs[25]["vectors"][:5]
        hits = idx.search_vectors(query, k=60, highlight=False)
        assert len(hits) == 57 and not {"d3", "d25", "d59"} & {h.id for h in hits}
        assert idx.check().ok


# -- incremental refresh ------------------------------------------------------------------------


def count_loads(monkeypatch, idx: li.Index) -> list[int]:
    """Segment ids whose search data ``idx`` loads from now on."""
    loaded: list[int] = []
    codec_type = type(idx._cache.current().codec)
    original = codec_type.load_resident

    def spy(self, store, segment):
        loaded.append(segment.segment_id)
        return original(self, store, segment)

    monkeypatch.setattr(codec_type, "load_resident", spy)
    return loaded


def writer_process(path: str, docs: list[dict], deletes: list[str]) -> None:
    with li.open(path, encoder=HashEncoder(dim=DIM)) as idx:
        idx.add(docs)
        idx.delete(deletes)


def test_a_reader_loads_only_the_segment_another_process_wrote(index_path, monkeypatch):
    docs, _ = clustered_docs(n_docs=200)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs[:150])
        idx.build(n_centroids=32, residual_dim=16, seed=0)
    with li.open(index_path, encoder=HashEncoder(dim=DIM), readonly=True) as reader:
        reader.search_vectors(docs[0]["vectors"][:4], k=3, highlight=False)
        loaded = count_loads(monkeypatch, reader)
        spawn = multiprocessing.get_context("spawn")
        proc = spawn.Process(target=writer_process, args=(str(index_path), docs[150:151], ["d7"]))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0
        hits = reader.search_vectors(docs[150]["vectors"][:6], k=200, highlight=False)
        assert hits[0].id == "d150" and "d7" not in {h.id for h in hits}
        (old, new) = reader._store.segments()
        assert loaded == [new.segment_id] and old.tombstones == 1  # the big segment was not reloaded
        loaded.clear()
        with li.open(index_path, encoder=HashEncoder(dim=DIM)) as writer:
            writer.delete(["d8"])
        assert "d8" not in {h.id for h in reader.search_vectors(docs[8]["vectors"], k=10, highlight=False)}
        assert loaded == []  # a delete is a tombstone: nothing reloaded


# -- merges are part of the write's transaction --------------------------------------------------

KILL_DURING_MERGE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_build import clustered_docs
    from fakes import HashEncoder
    import lateint_lite as li
    from lateint_lite import segments
    from lateint_lite.store import Store

    original = Store.write_segment_lists
    calls = []
    def write_then_die(self, segment_id, rows):
        calls.append(segment_id)
        if len(calls) == 1:  # the new segment's own lists
            return original(self, segment_id, rows)
        original(self, segment_id, dict(list(rows.items())[: len(rows) // 2]))
        os.kill(os.getpid(), signal.SIGKILL)  # mid-merge: old segments deleted, half the lists written

    segments.MERGE_FACTOR = 3
    segments.FLOOR_DOCS = 8
    docs, _ = clustered_docs(n_docs=40)
    with li.open({path!r}, encoder=HashEncoder(dim=32)) as idx:
        Store.write_segment_lists = write_then_die
        idx.add(docs[30:33])  # the third small segment: a merge is due
    """
)


def test_a_writer_killed_during_a_merge_leaves_the_last_commit(index_path):
    docs, _ = clustered_docs(n_docs=40)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs[:24])
        idx.build(n_centroids=16, residual_dim=16, seed=0)
        idx.add(docs[24:27])
        idx.add(docs[27:30])
        before = [(s.first_doc, s.last_doc, s.n_docs) for s in idx._store.segments()]
        query = docs[25]["vectors"][:5]
        answer = ranking(idx.search_vectors(query, k=5, highlight=False))
    script = KILL_DURING_MERGE.format(tests=str(Path(__file__).parent), path=str(index_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -9, result.stderr
    with li.open(index_path, encoder=HashEncoder(dim=DIM)) as idx:
        assert [(s.first_doc, s.last_doc, s.n_docs) for s in idx._store.segments()] == before
        assert len(idx) == 30 and idx.check().ok
        assert_same(ranking(idx.search_vectors(query, k=5, highlight=False)), answer)


def test_a_failed_merge_rolls_back_the_whole_add(index_path, monkeypatch):
    docs, _ = clustered_docs(n_docs=40)
    monkeypatch.setattr(segments, "MERGE_FACTOR", 3)
    monkeypatch.setattr(segments, "FLOOR_DOCS", 8)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs[:24])
        idx.build(n_centroids=16, residual_dim=16, seed=0)
        idx.add(docs[24:27])
        idx.add(docs[27:30])
        before = idx._store.segments()

        def broken(*args, **kwargs):
            raise RuntimeError("merge failed")

        monkeypatch.setattr(segments, "merge", broken)
        with pytest.raises(InternalError, match="merge failed"):
            idx.add(docs[30:33])  # the third small segment: a merge is due
        assert idx._store.segments() == before and len(idx) == 30 and idx.check().ok


def test_info_recommends_optimize_once_many_listed_documents_are_deleted(index_path):
    docs, _ = clustered_docs(n_docs=40)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)
        idx.delete([f"d{i}" for i in range(5)])
        info = idx.info()
        assert info.deleted_in_segments == 5 and not info.optimize_recommended
        idx.delete([f"d{i}" for i in range(5, 12)])
        info = idx.info()
        assert info.optimize_recommended and "12 deleted documents" in info.optimize_reason
        idx.optimize()
        info = idx.info()
        assert info.deleted_in_segments == 0 and info.segments == 1 and not info.optimize_recommended


def test_loading_segments_drops_the_pages_it_read_and_keeps_the_map(tmp_path, monkeypatch):
    """A reader that loads segments (all of them, then a new one) unmaps what the load mapped
    and frees the page cache, and searches with the memory map on afterwards."""
    from lateint_lite.store import MMAP_BYTES, Store

    drops = []
    real = Store.drop_read_pages
    monkeypatch.setattr(Store, "drop_read_pages", lambda self: drops.append(1) or real(self))
    path = tmp_path / "d.lateint"
    with li.open(path, create=True, encoder=HashEncoder()) as idx:
        idx.add([{"id": str(i), "text": f"tide moon ocean wave {i}"} for i in range(40)])
        idx.build(n_centroids=8, seed=0)
    with li.open(path, encoder=HashEncoder()) as reader, li.open(path, encoder=HashEncoder()) as writer:
        assert reader.search("moon", k=3)
        loads = len(drops)
        assert loads >= 1
        assert reader.search("tide", k=3)
        assert len(drops) == loads  # nothing new to load, nothing dropped
        writer.add([{"id": "new", "text": "a moon over the ocean"}])
        assert "new" in {h.id for h in reader.search("moon ocean", k=50)}
        assert len(drops) > loads  # the new segment was loaded
        assert reader._store._scalar("PRAGMA mmap_size") == MMAP_BYTES
