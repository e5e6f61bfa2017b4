"""Encoder speed per model on this machine: documents/s and per-query encoding latency (issue 15).

For each model, in one run: the first ``--docs`` SciFact documents (title + abstract) encoded with
the encoder's default threads (every core), documents/s and tokens/s; then every SciFact test query
encoded alone, p50/p95 ms. Encoding only: no index, no search.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_encoders.py --models minilm-l6-v2 answerai-colbert-small-v1 \\
        --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, percentiles, write_section

from lateint_lite.encoder import OnnxEncoder
from lateint_lite.evaluation import load_beir
from lateint_lite.sources import read_documents


def measure(model: str, texts: list[str], queries: list[str]) -> str:
    encoder = OnnxEncoder.from_model(model)
    encoder.encode_documents(texts[:4])  # sessions and threads warm
    started = time.perf_counter()
    tokens = sum(len(v) for v in encoder.encode_documents(texts))
    seconds = time.perf_counter() - started
    samples = []
    for query in queries:
        started = time.perf_counter()
        encoder.encode_queries([query])
        samples.append(time.perf_counter() - started)
    p50, p95 = percentiles(samples)
    speed = f"{len(texts) / seconds:.1f} | {tokens / seconds:,.0f}"
    return f"| {model} | {speed} | {p50:.1f} | {p95:.1f} | {encoder.threads} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["minilm-l6-v2", "answerai-colbert-small-v1"])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    dataset = load_beir(args.data / "scifact")
    texts = [d["text"] for d in itertools.islice(read_documents(str(dataset.corpus)), args.docs)]
    queries = list(dataset.queries.values())
    rows = []
    for model in args.models:
        rows.append(measure(model, texts, queries))
        print(rows[-1], flush=True)
    body = (
        f"First {len(texts)} SciFact documents (title + abstract, passages as configured) and the "
        f"{len(queries)} test queries one at a time; encoding only.\n\n"
        "| model | documents/s | tokens/s | query p50 ms | query p95 ms | threads |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    write_section(args.write, "Encoder speed per model (bench_encoders.py)", body)


if __name__ == "__main__":
    main()
