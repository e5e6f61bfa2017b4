"""Evaluation harness: metrics on hand-worked qrels, BEIR loading, the eval command."""

from __future__ import annotations

import gzip
import io
import json
import math

import pytest
from fakes import HashEncoder

import lateint_lite as li
from lateint_lite.errors import InvalidInputError
from lateint_lite.evaluation import evaluate, load_beir, metrics


def test_metrics_match_values_worked_out_by_hand():
    qrels = {"q1": {"a": 1, "c": 2}, "q2": {"x": 1}}
    run = {
        "q1": {"a": 3.0, "b": 2.0, "c": 1.0},  # relevant at ranks 1 (gain 1) and 3 (gain 2)
        "q2": {"y": 2.0, "x": 1.0},  # relevant at rank 2
    }
    got = metrics(run, qrels)
    # nDCG@10, trec_eval's linear gain: q1 DCG = 1/log2(2) + 2/log2(4) = 2; ideal = 2 + 1/log2(3)
    q1 = 2.0 / (2.0 + 1.0 / math.log2(3))
    q2 = (1.0 / math.log2(3)) / 1.0
    assert got["ndcg_at_10"] == pytest.approx((q1 + q2) / 2, abs=1e-4)
    assert got["recall_at_100"] == pytest.approx(1.0)
    assert got["mrr_at_10"] == pytest.approx((1.0 + 0.5) / 2)


def test_a_query_with_no_results_counts_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"x": 1}}
    got = metrics({"q1": {"a": 1.0}}, qrels)
    assert got["ndcg_at_10"] == pytest.approx(0.5)
    assert got["mrr_at_10"] == pytest.approx(0.5)


def write_beir(folder, gz=True):
    docs = [
        {"_id": "d1", "title": "Tides", "text": "the moon pulls the ocean and makes tides"},
        {"_id": "d2", "title": "Bread", "text": "yeast makes bread rise with gas"},
        {"_id": "d3", "title": "Stars", "text": "stars form from clouds of gas and dust"},
    ]
    queries = [{"_id": "1", "text": "ocean tides moon"}, {"_id": "2", "text": "yeast bread"}, {"_id": "9", "text": "x"}]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    suffix = ".jsonl.gz" if gz else ".jsonl"
    for stem, rows in (("corpus", docs), ("queries", queries)):
        data = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
        (folder / f"{stem}{suffix}").write_bytes(gzip.compress(data) if gz else data)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    return folder


def test_load_beir_keeps_judged_queries_only(tmp_path):
    data = load_beir(write_beir(tmp_path / "tiny", gz=False))
    assert data.name == "tiny"
    assert data.queries == {"1": "ocean tides moon", "2": "yeast bread"}
    assert data.qrels == {"1": {"d1": 1}, "2": {"d2": 1}}


def test_load_beir_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="not a directory"):
        load_beir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match=r"no corpus\.jsonl"):
        load_beir(tmp_path / "empty")
    unjudged = write_beir(tmp_path / "unjudged")
    (unjudged / "qrels" / "test.tsv").unlink()
    with pytest.raises(InvalidInputError, match="qrels file not found"):
        load_beir(unjudged)
    folder = write_beir(tmp_path / "bad")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\tvery\n")
    with pytest.raises(InvalidInputError, match="integer"):
        load_beir(folder)


def test_evaluate_every_mode_with_the_fake_encoder(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    data = load_beir(folder)
    with li.open(tmp_path / "tiny.lateint", create=True, encoder=HashEncoder()) as idx:
        idx.add(
            [
                {"id": "d1", "text": "Tides the moon pulls the ocean and makes tides"},
                {"id": "d2", "text": "Bread yeast makes bread rise with gas"},
                {"id": "d3", "text": "Stars stars form from clouds of gas and dust"},
            ]
        )
        results = evaluate(idx.search, data, ["exact", "pruned", "pooled", "bm25", "hybrid", "hybrid-rrf"])
    for r in results:
        assert r.queries == 2 and r.seconds >= 0
        assert r.ndcg_at_10 == pytest.approx(1.0), r.mode  # both queries find their document first
        assert r.mrr_at_10 == pytest.approx(1.0)


@pytest.mark.model
def test_eval_command_prints_a_table_and_json(tmp_path, monkeypatch):
    from lateint_lite.cli import main

    folder = write_beir(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert main(["eval", str(folder), "--no-progress"], stdout=out) == 0
    text = out.getvalue()
    assert "tiny: 2 test queries" in text and "hybrid" in text and "bm25" in text
    assert (tmp_path / "tiny.lateint").exists()
    out = io.StringIO()
    assert main(["eval", str(folder), "--json", "--modes", "bm25,pruned", "--no-progress"], stdout=out) == 0
    report = json.loads(out.getvalue())
    assert [r["mode"] for r in report["results"]] == ["bm25", "pruned"]
    assert report["results"][1]["ndcg_at_10"] == pytest.approx(1.0)
    assert main(["eval", str(folder), "--modes", "nope"]) == 1
