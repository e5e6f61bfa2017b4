"""Rebuilds never quantize a quantization: text is encoded again, precomputed vectors are passed
again, and only an explicit lossy rebuild decodes stored codes (issue 18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes import HashEncoder

import lateint_lite as li
from lateint_lite import maintenance
from lateint_lite.errors import ModelError, RebuildSourceError
from lateint_lite.evaluation import metrics

DIM = 32
BUILD = {"residual_dim": 16, "seed": 0}  # centroids by PLAID's rule, as optimize() retrains
FIXTURES = Path(__file__).with_name("fixtures")


def corpus(n=160, seed=0):
    """Documents of topical words: each draws most words from two of 12 topics."""
    rng = np.random.default_rng(seed)
    topics = [[f"t{t}w{w}" for w in range(25)] for t in range(12)]
    docs = []
    for i in range(n):
        chosen = rng.choice(12, 2, replace=False)
        words = [str(rng.choice(topics[int(rng.choice(chosen))])) for _ in range(int(rng.integers(12, 30)))]
        docs.append({"id": f"d{i}", "text": " ".join(words), "meta": {"n": i}})
    return docs


def queries(docs, n=40, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for q in range(n):
        doc = docs[int(rng.integers(0, len(docs)))]
        words = doc["text"].split()
        out[f"q{q}"] = (" ".join(rng.choice(words, 5)), doc["id"])
    return out


def answers(idx, qs, **kwargs):
    return {q: [(h.id, h.score) for h in idx.search(text, k=10, **kwargs)] for q, (text, _) in qs.items()}


def assert_same(a, b, tolerance=1e-6):
    assert a.keys() == b.keys()
    for q in a:
        assert [d for d, _ in a[q]] == [d for d, _ in b[q]], q
        np.testing.assert_allclose([s for _, s in a[q]], [s for _, s in b[q]], atol=tolerance)


def payloads(idx):
    return {row.doc_id: (row.codes, row.payload) for row in idx._store.iter_token_payloads()}


def test_rebuilding_a_text_index_reproduces_it(index_path):
    docs = corpus()
    qs = queries(docs)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)
        idx.build(**BUILD)
        first = answers(idx, qs), answers(idx, qs, exact=True), payloads(idx)
        report = idx.build(**BUILD)
        assert not report.lossy and idx.info().lossy_generations == 0
        second = answers(idx, qs), answers(idx, qs, exact=True), payloads(idx)
        idx.optimize(retrain=True)
        third = answers(idx, qs), answers(idx, qs, exact=True), payloads(idx)
    for again in (second, third):
        assert_same(first[0], again[0])
        assert_same(first[1], again[1])
        assert first[2] == again[2]  # byte for byte


def test_readme_flow_add_autobuild_add_build_equals_one_build(tmp_path, monkeypatch):
    monkeypatch.setattr(maintenance, "AUTO_BUILD_TOKENS", 1500)
    docs = corpus()
    qs = queries(docs)
    with li.open(tmp_path / "flow.lateint", create=True, encoder=HashEncoder(dim=DIM)) as flow:
        flow.add(docs[:80])
        assert flow.is_built  # the automatic build ran
        flow.add(docs[80:])  # encoded with the automatic build's centroids
        flow.build(**BUILD)
        got = answers(flow, qs), answers(flow, qs, exact=True)
    with li.open(tmp_path / "once.lateint", create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as once:
        once.add(docs)
        once.build(**BUILD)
        want = answers(once, qs), answers(once, qs, exact=True)
    assert_same(got[0], want[0])
    assert_same(got[1], want[1])


def vector_docs(n=150, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIM))
    docs = []
    for i in range(n):
        topic = centres[rng.choice(20, int(rng.integers(20, 40)))]
        vectors = (topic + 0.6 * rng.standard_normal(topic.shape)).astype(np.float32)
        docs.append({"id": f"v{i}", "text": f"caption {i}", "vectors": vectors})
    return docs


def vector_answers(idx, docs, **kwargs):
    return {d["id"]: [(h.id, h.score) for h in idx.search_vectors(d["vectors"][:6], k=10, **kwargs)] for d in docs[:30]}


def test_precomputed_vectors_must_be_passed_again_or_lossy_opted_into(index_path):
    docs = vector_docs()
    by_id = {d["id"]: d["vectors"] for d in docs}
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)
        idx.build(**BUILD)  # from the stored int8 tokens: lossless
        first = vector_answers(idx, docs), payloads(idx)
        assert idx.info().vector_documents == len(docs)
        before = idx._store.path and Path(index_path).read_bytes()
        with pytest.raises(RebuildSourceError, match="precomputed vectors"):
            idx.build(**BUILD)
        with pytest.raises(RebuildSourceError, match="precomputed vectors"):
            idx.optimize(retrain=True)
        with pytest.raises(RebuildSourceError, match="not in the vectors"):
            idx.build(**BUILD, vectors={k: v for k, v in by_id.items() if k != "v7"})
        assert vector_answers(idx, docs) == first[0] and payloads(idx) == first[1]
        del before

        idx.build(**BUILD, vectors=by_id)
        assert_same(vector_answers(idx, docs), first[0])
        assert payloads(idx) == first[1]
        idx.build(**BUILD, vectors=lambda ids: [by_id[i] for i in ids])
        assert payloads(idx) == first[1]

        report = idx.build(**BUILD, lossy=True)
        assert report.lossy and idx.info().lossy_generations == 1
        idx.optimize(retrain=True, lossy=True)
        assert idx.info().lossy_generations == 2
        idx.build(**BUILD, vectors=by_id)  # back to the source: the loss is gone
        assert idx.info().lossy_generations == 0
        assert payloads(idx) == first[1]


def test_retrain_after_the_collection_doubled_matches_a_fresh_build(tmp_path):
    docs = corpus(n=240, seed=5)
    qs = queries(docs, n=60, seed=6)
    qrels = {q: {doc_id: 1} for q, (_, doc_id) in qs.items()}

    def ndcg(idx):
        run = {q: {h.id: 100.0 - h.rank for h in idx.search(text, k=10, exact=True)} for q, (text, _) in qs.items()}
        return metrics(run, qrels)["ndcg_at_10"]

    options = {"residual_dim": 16, "seed": 0}
    with li.open(tmp_path / "grown.lateint", create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as grown:
        grown.add(docs[:120])
        grown.build(**options)
        grown.add(docs[120:])
        assert grown.info().optimize_recommended
        report = grown.optimize()
        assert report.action == "retrained" and not report.build.lossy
        retrained = ndcg(grown)
    with li.open(tmp_path / "fresh.lateint", create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as fresh:
        fresh.add(docs)
        fresh.build(**options)
        reference = ndcg(fresh)
    assert abs(retrained - reference) <= 0.002  # 0.2 nDCG points


def test_text_rebuild_needs_the_index_encoder(index_path):
    docs = corpus(n=60)
    with li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(docs)
        idx.build(**BUILD)
    with li.open(index_path) as idx, pytest.raises(ModelError, match="custom encoder"):
        idx.build(**BUILD)


def test_schema_2_file_learns_where_its_vectors_came_from(tmp_path):
    path = tmp_path / "mixed.lateint"
    shutil.copyfile(FIXTURES / "v2_mixed.lateint", path)
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        assert idx.info().vector_documents == 0  # unknown until a rebuild looks
        with pytest.raises(RebuildSourceError, match="'vec-"):
            idx.build(n_centroids=16, residual_dim=16)
        report = idx.build(n_centroids=16, residual_dim=16, lossy=True)
        assert report.lossy and idx.info().lossy_generations == 1
        assert idx.info().vector_documents == 10
        origins = dict(idx._store._conn.execute("SELECT ext_id, origin FROM documents"))
        assert {k for k, v in origins.items() if v == 1} == {f"vec-{i}" for i in range(10)}
        assert all(v == 0 for k, v in origins.items() if not k.startswith("vec-"))
        with pytest.raises(RebuildSourceError, match="precomputed vectors"):
            idx.build(n_centroids=16, residual_dim=16)  # now known up front
        assert idx.search("how do stars form", k=1)[0].id == "astro-1"
