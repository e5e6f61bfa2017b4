"""Evaluating an index on a BEIR-layout dataset with a maintained metrics library.

A dataset folder holds ``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]`` and
``qrels/test.tsv``. Every mode retrieves the top 100 documents per test query;
nDCG@10, Recall@100 and MRR@10 are computed by ``ir-measures`` (trec_eval's
implementations), never by hand. Needs the ``eval`` extra.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .extras import require
from .progress import progress_bar
from .sources import open_text, read_jsonl

RETRIEVE_K = 100
#: name -> keyword arguments of Index.search (rankings only: no highlights)
MODES: dict[str, dict[str, Any]] = {
    "exact": {"mode": "maxsim", "exact": True, "highlight": False},
    "pruned": {"mode": "maxsim", "highlight": False},
    "pooled": {"mode": "pooled", "highlight": False},
    "bm25": {"mode": "bm25", "highlight": False},
    "hybrid": {"mode": "hybrid", "fusion": "score", "highlight": False},  # the product default
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf", "highlight": False},
}
DEFAULT_MODES = ("exact", "pruned", "pooled", "bm25", "hybrid", "hybrid-rrf")


@dataclass(frozen=True)
class BeirDataset:
    """File locations plus the test queries and their judgements."""

    name: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class ModeResult:
    mode: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    seconds: float

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "queries_per_second": round(self.queries_per_second, 2)}


def _find(folder: Path, stem: str) -> Path:
    for suffix in (".jsonl", ".jsonl.gz"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise InvalidInputError(f"{folder}: no {stem}.jsonl or {stem}.jsonl.gz (BEIR layout expected)")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id -> {corpus-id: relevance} from a BEIR qrels TSV with a header row."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: qrels file not found")
    qrels: dict[str, dict[str, int]] = {}
    with open_text(str(path)) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if number == 1 and fields[0] == "query-id":
                continue
            if len(fields) != 3:
                if not line.strip():
                    continue
                raise InvalidInputError(f"{path}:{number}: expected 3 tab-separated fields")
            try:
                qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{number}: relevance must be an integer") from exc
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """The dataset in ``folder``; queries are restricted to those judged in ``qrels/<split>.tsv``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a directory")
    corpus = _find(folder, "corpus")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries: dict[str, str] = {}
    for obj in read_jsonl(str(_find(folder, "queries"))):
        qid = str(obj.get("_id", obj.get("id", "")))
        if qid in qrels and isinstance(obj.get("text"), str):
            queries[qid] = obj["text"]
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise InvalidInputError(f"{folder}: {len(missing)} judged queries have no text, e.g. {missing[0]!r}")
    return BeirDataset(name=folder.name, corpus=corpus, queries=queries, qrels=qrels)


def metrics(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 (mean over judged queries) via ir-measures."""
    ir_measures = require("ir_measures", "eval", "evaluation")
    measures = [ir_measures.nDCG @ 10, ir_measures.R @ 100, ir_measures.RR @ 10]
    # ir-measures averages over every judged query; a query missing from the run counts as 0
    values = ir_measures.calc_aggregate(measures, qrels, {q: r for q, r in run.items() if q in qrels})
    return {
        "ndcg_at_10": float(values[measures[0]]),
        "recall_at_100": float(values[measures[1]]),
        "mrr_at_10": float(values[measures[2]]),
    }


def evaluate(
    search: Callable[..., list[Any]],
    dataset: BeirDataset,
    modes: list[str],
    *,
    progress: bool = False,
    limit: int | None = None,
) -> list[ModeResult]:
    """Run every test query in every mode through ``search`` (``Index.search``)."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InvalidInputError(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    items = list(dataset.queries.items())[:limit]
    qrels = {q: dataset.qrels[q] for q, _ in items}
    results = []
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        with progress_bar(progress, len(items), f"querying ({mode})", unit="q") as tick:
            started = time.perf_counter()
            for qid, text in items:
                hits = search(text, k=RETRIEVE_K, **MODES[mode])
                # scored by rank so ir-measures evaluates exactly our order (no tie reshuffling)
                run[qid] = {h.id: float(RETRIEVE_K + 1 - h.rank) for h in hits}
                tick(1)
            seconds = time.perf_counter() - started
        values = metrics(run, qrels)
        results.append(ModeResult(mode=mode, queries=len(items), seconds=round(seconds, 2), **values))
    return results


def format_table(dataset: BeirDataset, results: list[ModeResult]) -> str:
    """A plain-text table, one row per mode."""
    queries = results[0].queries if results else 0
    lines = [
        f"{dataset.name}: {queries} test queries, top {RETRIEVE_K} retrieved per query",
        f"{'mode':<14}{'nDCG@10':>9}{'R@100':>9}{'MRR@10':>9}{'q/s':>9}",
    ]
    for r in results:
        lines.append(
            f"{r.mode:<14}{100 * r.ndcg_at_10:>9.2f}{100 * r.recall_at_100:>9.2f}"
            f"{100 * r.mrr_at_10:>9.2f}{r.queries_per_second:>9.1f}"
        )
    return "\n".join(lines)


def to_json(dataset: BeirDataset, results: list[ModeResult], extra: dict[str, Any]) -> str:
    return json.dumps({"dataset": dataset.name, **extra, "results": [r.to_dict() for r in results]}, indent=2)
