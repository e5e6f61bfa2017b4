"""Sharded indexes on Ray vs one file (issue 17): ingest scaling and search across shards.

Phase ``vectors`` (precomputed synthetic vectors, ``synthetic.Generator``, dim 128):
- ingest: one process writing one file vs Ray writing ``--shards`` files with 1 and with 2
  CPUs; each trains one codec on the same kind of random sample, builds the empty file(s)
  with it and writes every document once; documents/s and scaling efficiency;
- search (on the 2-CPU sharded index and the single file): p50/p95 of pruned search, one
  file vs the shards searched by threads in one process vs Ray actors (2 and one per
  shard), recall@10 against exact MaxSim on the single file; the fan-out overhead is Ray's
  p50 minus the in-process sharded p50.

Phase ``encoder`` (real text, the first ``--docs`` SciFact documents, the default model):
one process (``add`` + ``build``, default threads: every core) vs Ray with 1 and 2 encoding
actors (one onnxruntime thread each), documents/s.

Run from a checkout with ``OPENBLAS_NUM_THREADS=1``; ``--write docs/benchmarks.md`` records
the tables.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import DEFAULT_DATA, percentiles, write_section
from synthetic import Generator, VectorsOnly

import lateint_lite as li
from lateint_lite import distributed
from lateint_lite.builder import HELDOUT_TOKENS, sample_tokens_for
from lateint_lite.sharding import shard_of
from lateint_lite.shared_codec import train_shared_codec

DIM = 128
TOKENS_PER_DOC = 100  # Generator draws 50-150


def synthetic_rows(batch: dict[str, np.ndarray], shards: int) -> dict[str, list]:
    """Ray Data batch function: document numbers -> encoded rows with precomputed vectors."""
    gen = Generator(DIM)
    ids = [f"doc{int(i)}" for i in batch["id"]]
    return {
        "id": ids,
        "text": [f"synthetic document {int(i)}" for i in batch["id"]],
        "meta_json": ["{}"] * len(ids),
        "shard": [shard_of(i, shards) for i in ids],
        "vectors": [gen.document(int(i))[0].astype(np.float32).tobytes() for i in batch["id"]],
    }


def sample_codec(n_docs: int):
    """The codec both layouts train the same way: on random documents' vectors, as a build would."""
    gen = Generator(DIM)
    options = li.BuildOptions().validated(DIM)
    total = TOKENS_PER_DOC * n_docs
    wanted = sample_tokens_for(total, None) + HELDOUT_TOKENS
    rng = np.random.default_rng(0)
    numbers = rng.choice(n_docs, min(n_docs, int(1.5 * wanted / TOKENS_PER_DOC) + 1), replace=False)
    vectors = [gen.document(int(i))[0] for i in numbers]
    held = vectors[-max(1, HELDOUT_TOKENS // TOKENS_PER_DOC) :]
    return train_shared_codec(vectors[: len(vectors) - len(held)] or held, held, options, total)


def single_file_ingest(path: Path, n_docs: int) -> float:
    """One process, the same steps as the Ray path: codec on a random sample, then every document once."""
    gen = Generator(DIM)
    started = time.perf_counter()
    shared = sample_codec(n_docs)
    with li.open(path, create=True, encoder=VectorsOnly(DIM), auto_build=False) as idx:
        idx.build(codec=shared)
        for lo in range(0, n_docs, 20_000):
            idx.add(gen.batch(lo, min(lo + 20_000, n_docs)), batch_size=1000)
    return time.perf_counter() - started


def local_shards_ingest(manifest: Path, n_docs: int, shards: int) -> float:
    """The sharded layout written by this process (no Ray): one codec built into every empty shard,
    then every document routed to its shard by ``ShardedIndex.add``."""
    gen = Generator(DIM)
    started = time.perf_counter()
    with li.open_sharded(manifest, create=True, shards=shards, encoder=VectorsOnly(DIM)) as sharded:
        sharded.build(codec=sample_codec(n_docs))
        for lo in range(0, n_docs, 20_000):
            sharded.add(gen.batch(lo, min(lo + 20_000, n_docs)), batch_size=1000)
    return time.perf_counter() - started


def ray_ingest(folder: Path, n_docs: int, shards: int, cpus: int) -> tuple[float, dict]:
    import ray

    distributed.connect(num_cpus=cpus)
    manifest = folder / f"ray{cpus}.json"
    started = time.perf_counter()
    li.open_sharded(manifest, create=True, shards=shards, encoder=VectorsOnly(DIM)).close()
    rows = ray.data.range(n_docs).map_batches(synthetic_rows, fn_kwargs={"shards": shards}, batch_size=500)
    report = distributed.write_encoded(str(manifest), rows.materialize(), started=started)
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds, report.__dict__


def recall(found: list[str], truth: list[str]) -> float:
    return len(set(found) & set(truth)) / max(1, len(truth))


def timed_searches(search, queries: list[np.ndarray], truth: list[list[str]]) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, mean recall@10 over the queries that have a truth: the first len(truth))."""
    search(queries[0])  # warm: resident state, kernels
    samples, recalls = [], []
    for i, query in enumerate(queries):
        started = time.perf_counter()
        hits = search(query)
        samples.append(time.perf_counter() - started)
        if i < len(truth):
            recalls.append(recall([h.id for h in hits], truth[i]))
    p50, p95 = percentiles(samples)
    return p50, p95, float(np.mean(recalls))


def vectors_phase(args: argparse.Namespace) -> str:
    if args.reuse:  # search only, over the files a previous run left (migrated first if needed)
        for path in sorted(args.folder.glob("*.lateint")):
            li.migrate(path)
        return search_tables(args, args.folder)
    folder = args.folder
    if args.local_shards:  # beside an existing one.lateint: the shards, written by this process
        for old in folder.glob(f"ray{max(args.ray_cpus)}*"):
            old.unlink()
        seconds = local_shards_ingest(folder / f"ray{max(args.ray_cpus)}.json", args.docs, args.shards)
        return (
            "| ingest | CPUs | seconds | docs/s |\n|---|---|---|---|\n"
            f"| one process, {args.shards} shards (ShardedIndex.add) | 2 | {seconds:.0f} | {args.docs / seconds:,.0f} |"
        )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = []
    single_s = single_file_ingest(folder / "one.lateint", args.docs)
    rows.append(f"| one process, one file | 1 | {single_s:.0f} | {args.docs / single_s:,.0f} | - |")
    print(rows[-1], flush=True)
    ray_s = {}
    for cpus in args.ray_cpus:
        seconds, report = ray_ingest(folder, args.docs, args.shards, cpus)
        ray_s[cpus] = seconds
        efficiency = f"{ray_s[1] / (cpus * seconds):.2f}" if 1 in ray_s and cpus > 1 else "-"
        rows.append(
            f"| Ray, {args.shards} shards | {cpus} | {seconds:.0f} (train {report['train_seconds']:.0f}, "
            f"write {report['write_seconds']:.0f}) | {args.docs / seconds:,.0f} | {efficiency} |"
        )
        print(rows[-1], flush=True)
    ingest = (
        "| ingest | CPUs | seconds | docs/s | scaling efficiency (2 CPUs vs 2 x 1) |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    if args.ingest_only:  # search later, on a quiet host, with --reuse
        return ingest
    return f"{ingest}\n\n{search_tables(args, folder)}"


def search_tables(args: argparse.Namespace, folder: Path) -> str:

    gen = Generator(DIM)
    queries = [gen.query(i) for i in range(args.queries)]
    manifest = folder / f"ray{max(args.ray_cpus)}.json"
    judged = queries[: args.truth_queries or len(queries)]  # exact MaxSim at 1M: ~20 s per query here
    with li.open(folder / "one.lateint", encoder=VectorsOnly(DIM), readonly=True) as one:
        one_codec = one.shared_codec().fingerprint
        truth = [[h.id for h in one.search_vectors(q, 10, exact=True, highlight=False)] for q in judged]
        single = timed_searches(lambda q: one.search_vectors(q, 10, highlight=False), queries, truth)
    # recall of each layout against exact MaxSim under its own codec (the shards' codec was trained
    # on another random sample than the file's, which alone reorders near-ties)
    with li.open_sharded(manifest, encoder=VectorsOnly(DIM), readonly=True) as sharded:
        same_codec = sharded.info()["codec_fingerprint"] == one_codec
        sharded_exact = [[h.id for h in sharded.search_vectors(q, 10, exact=True, highlight=False)] for q in judged]
        local = timed_searches(lambda q: sharded.search_vectors(q, 10, highlight=False), queries, sharded_exact)
    overlap = np.mean([recall(a, b) for a, b in zip(sharded_exact, truth, strict=True)])
    distributed.connect(num_cpus=2)
    results = {}
    for actors in (2, args.shards):
        with distributed.RaySearcher(str(manifest), actors=actors, encoder=VectorsOnly(DIM)) as searcher:
            results[actors] = timed_searches(
                lambda q, s=searcher: s.search_vectors(q, 10, highlight=False), queries, sharded_exact
            )
    search_rows = [
        f"| one file | {single[0]:.1f} | {single[1]:.1f} | {single[2]:.3f} | - |",
        f"| {args.shards} shards, threads in one process | {local[0]:.1f} | {local[1]:.1f} | {local[2]:.3f} | - |",
    ] + [
        f"| {args.shards} shards, Ray, {a} actors | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.3f} | {r[0] - local[0]:+.1f} |"
        for a, r in results.items()
    ]
    search = (
        "| search (k=10, pruned) | p50 ms | p95 ms | recall@10 vs exact | fan-out overhead vs in-process (ms) |\n"
        "|---|---|---|---|---|\n" + "\n".join(search_rows)
    )
    codecs = (
        "both layouts use the same codec (one training sample), and"
        if same_codec
        else "the two codecs (same options, different random samples)"
    )
    return (
        f"{args.docs:,} synthetic documents (~{TOKENS_PER_DOC} tokens each, dim {DIM}), {args.shards} shards, "
        f"{args.queries} queries timed, recall over the first {len(judged)}. Recall is against exact MaxSim "
        f"under the layout's own codec; {codecs} share {overlap:.0%} of their exact top-10s.\n\n{search}\n"
    )


def encoder_phase(args: argparse.Namespace) -> str:
    folder = args.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source = folder / "docs.jsonl"
    with (
        gzip.open(args.data / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle,
        source.open("w", encoding="utf-8") as out,
    ):
        for n, line in enumerate(handle):
            if n >= args.docs:
                break
            record = json.loads(line)
            text = f"{record.get('title', '')}. {record['text']}".strip(". ")
            out.write(json.dumps({"id": record["_id"], "text": text}) + "\n")
    docs = [json.loads(line) for line in source.read_text().splitlines()]
    started = time.perf_counter()
    with li.open(folder / "one.lateint", create=True, auto_build=False) as idx:  # default threads: every core
        idx.add(docs)
        idx.build()
    rows = [f"| one process (add + build) | 1 | {time.perf_counter() - started:.0f} |"]
    single = time.perf_counter() - started
    rows[-1] += f" {args.docs / single:.2f} | - |"
    print(rows[-1], flush=True)
    import ray

    distributed.connect(num_cpus=2)
    per = {}
    for workers in (1, 2):
        started = time.perf_counter()
        distributed.build_sharded(str(folder / f"w{workers}.json"), str(source), shards=2, workers=workers)
        per[workers] = time.perf_counter() - started
        efficiency = "-" if workers == 1 else f"{per[1] / (2 * per[2]):.2f}"
        rows.append(
            f"| Ray, 2 shards | {workers} | {per[workers]:.0f} | {args.docs / per[workers]:.2f} | {efficiency} |"
        )
        print(rows[-1], flush=True)
    ray.shutdown()
    return (
        f"The first {args.docs} SciFact documents (title + abstract), default model (MiniLM-L6, int8), "
        "The single process uses its default threads (every core); each Ray actor one onnxruntime thread.\n\n"
        "| ingest through the encoder | encoders | seconds | docs/s | scaling efficiency |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("vectors", "encoder"), required=True)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/lateint-bench/shards"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--ray-cpus", type=int, nargs="+", default=[1, 2], help="Ray cluster sizes to ingest with (default 1 2)"
    )
    parser.add_argument("--reuse", action="store_true", help="vectors phase: search the files of an earlier run")
    parser.add_argument("--ingest-only", action="store_true", help="vectors phase: write the files, search later")
    parser.add_argument("--truth-queries", type=int, help="exact MaxSim truth for only the first N queries")
    parser.add_argument(
        "--local-shards",
        action="store_true",
        help="vectors phase: write the shards in this process beside the folder's one.lateint (no Ray ingest; "
        "Ray Data materializes every float32 vector in its object store, 51 GB at 1M documents)",
    )
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.phase == "vectors":
        title = "Shards on Ray: search, precomputed vectors" if args.reuse else "Shards on Ray: precomputed vectors"
        if args.ingest_only:
            title = "Shards on Ray: ingest, precomputed vectors"
        if args.local_shards:
            title = "Shards: local ingest, precomputed vectors"
        if args.docs != 200_000:  # the 200k sections stay; other sizes get their own
            title += f", {args.docs:,} documents"
        write_section(args.write, title, vectors_phase(args))
    else:
        write_section(args.write, "Shards on Ray: ingest through the encoder", encoder_phase(args))


if __name__ == "__main__":
    main()
