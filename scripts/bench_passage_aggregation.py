"""How to score a document of several passages: candidate aggregations compared on one index.

Takes an index of documents split into passages (built with the default model), retrieves each
test query's pruned top N, and re-scores those N documents from their decoded tokens under each
aggregation: MaxSim over the union of all passages' tokens, the best passage's MaxSim, the best
plus 0.1 x the mean passage, and the mean of union and best. Passage boundaries are recomputed
from the tokenizer (the windows the encoder produced), so this also runs on files written before
passage lengths were stored. nDCG@10 / R@100 by ir-measures.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_passage_aggregation.py INDEX ../shared/data/scifact 200

INDEX: a file written with passages (schema 3 files read as one passage each have to be
migrated first; their stored tokens are the passages in order either way).
"""

import itertools
import sys
import time

import numpy as np

import lateint_lite
from lateint_lite.encoder import OnnxEncoder
from lateint_lite.evaluation import load_beir, metrics

#: name -> score of a document from its per-passage MaxSim scores and its union MaxSim
AGGREGATIONS = {
    "union": lambda per, union: union,
    "best passage": lambda per, union: per.max(),
    "best + 0.1 mean": lambda per, union: per.max() + 0.1 * per.mean(),
    "(union + best) / 2": lambda per, union: 0.5 * (union + per.max()),
}


def passage_bounds(encoder: OnnxEncoder, text: str) -> np.ndarray:
    """Token offsets of the passages the encoder makes of ``text`` (after markers and skiplist)."""
    counts = []
    for _, window in encoder._passages([text]):
        ids = encoder._with_marker(np.array(window.ids, dtype=np.int64), encoder._doc_marker)
        counts.append(int(encoder._kept(ids).sum()) if encoder._skip_ids.size else len(ids))
    return np.concatenate([[0], np.cumsum(counts)])


def main() -> None:
    path, data, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    encoder = OnnxEncoder.from_model()
    idx = lateint_lite.open(path, encoder=encoder, readonly=True)
    store = idx._store
    dataset = load_beir(data)
    items = list(dataset.queries.items())
    queries = encoder.encode_queries([t for _, t in items])
    with store.snapshot():
        codec = idx._cache.current().codec
    documents: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def tokens_of(ext_id: str) -> tuple[np.ndarray, np.ndarray]:
        if ext_id not in documents:
            with store.snapshot():
                row = store.document_by_ext_id(ext_id)
                decoded = codec.decode(next(iter(store.token_payloads([row.doc_id]))))
            bounds = passage_bounds(encoder, row.text)
            assert bounds[-1] == len(decoded), ext_id
            documents[ext_id] = (decoded, bounds)
        return documents[ext_id]

    runs: dict[str, dict[str, dict[str, float]]] = {"pruned search": {}, **{name: {} for name in AGGREGATIONS}}
    started = time.time()
    for (qid, _), query in zip(items, queries, strict=True):
        hits = idx.search_vectors(query, k=depth, highlight=False)
        runs["pruned search"][qid] = {h.id: float(depth + 1 - h.rank) for h in hits[:100]}
        scores: dict[str, dict[str, float]] = {name: {} for name in AGGREGATIONS}
        for hit in hits:
            decoded, bounds = tokens_of(hit.id)
            sims = query @ decoded.T
            per = np.array([sims[:, a:b].max(axis=1).sum() for a, b in itertools.pairwise(bounds)])
            for name, aggregate in AGGREGATIONS.items():
                scores[name][hit.id] = float(aggregate(per, float(sims.max(axis=1).sum())))
        for name, found in scores.items():
            top = sorted(found.items(), key=lambda item: -item[1])[:100]
            runs[name][qid] = {doc: float(101 - rank) for rank, (doc, _) in enumerate(top, start=1)}
    qrels = {q: dataset.qrels[q] for q, _ in items}
    print(f"{path}: top {depth} re-scored, {len(items)} queries, {time.time() - started:.0f} s")
    for name, run in runs.items():
        values = metrics(run, qrels)
        print(f"{name:<20} nDCG@10 {100 * values['ndcg_at_10']:.2f}  R@100 {100 * values['recall_at_100']:.2f}")


if __name__ == "__main__":
    main()
