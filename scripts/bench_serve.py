"""Load test of `lateint serve`: concurrent clients search while one client writes.

Starts `lateint serve --writable` on a copy of the index (loopback, a free port), runs a
readers-only phase and then a readers-plus-writer phase of fixed length, stops the server,
and checks that every acknowledged write is in the file. Reports requests/s, p50/p95/p99
latency and errors per phase (errors must be 0) and the writes' latency. Stops by itself.

    python scripts/bench_serve.py                                  # the bundled sample corpus
    python scripts/bench_serve.py --index scifact.lateint --queries ../shared/data/scifact/queries.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import httpx
import numpy as np
from benchutil import write_section

SAMPLE_QUERIES = (
    "why do my eyes water when I chop vegetables?",
    "how does a database stay consistent after a crash?",
    "what happens when a massive star dies?",
    "how do plants make sugar from light?",
    "why does bread rise?",
)
START_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Tally:
    """Latencies (s) and failures of one kind of request in one phase."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    def row(self, label: str, wall_s: float) -> str:
        ms = np.asarray(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
        rate = len(self.latencies) / wall_s
        return (
            f"| {label} | {len(self.latencies)} | {rate:.1f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {len(self.errors)} |"
        )


def load_queries(path: str | None, limit: int) -> list[str]:
    if path is None:
        return list(SAMPLE_QUERIES)
    from lateint_lite.sources import read_jsonl

    texts = [obj["text"] for obj in read_jsonl(path) if isinstance(obj.get("text"), str)]
    return texts[:limit]


def sample_index(folder: Path) -> Path:
    """The bundled sample corpus indexed with the default model."""
    from importlib import resources

    import lateint_lite as li
    from lateint_lite.sources import read_documents

    path = folder / "sample.lateint"
    with resources.as_file(resources.files("lateint_lite") / "data" / "sample.jsonl") as sample:
        docs = list(read_documents(str(sample)))
    with li.open(path, create=True) as idx:
        idx.add(docs)
    return path


def start_server(path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lateint_lite", "serve", str(path), "--writable", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    line = process.stdout.readline() if process.stdout else ""
    if " at " not in line or time.monotonic() > deadline:
        process.kill()
        raise SystemExit(f"bench_serve: the server did not start: {line!r}")
    return process, line.split(" at ", 1)[1].split()[0].rstrip("/")


def read_loop(url: str, queries: list[str], k: int, stop: threading.Event, tally: Tally, seed: int) -> None:
    cycle = itertools.islice(itertools.cycle(queries), seed, None)
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        for query in cycle:
            if stop.is_set():
                return
            start = time.perf_counter()
            try:
                response = http.get("/search", params={"q": query, "k": k})
                error = None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = repr(exc)
            tally.record(time.perf_counter() - start, error)


def write_loop(url: str, stop: threading.Event, tally: Tally, acknowledged: list[str], interval_s: float) -> None:
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        for n in itertools.count():
            if stop.wait(interval_s):
                return
            doc_id = f"load-{n}"
            doc = {"id": doc_id, "text": f"load test note {n}: {SAMPLE_QUERIES[n % len(SAMPLE_QUERIES)]}"}
            start = time.perf_counter()
            try:
                response = http.post("/add", json={"documents": [doc]})
                error = None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = repr(exc)
            tally.record(time.perf_counter() - start, error)
            if error is None:
                acknowledged.append(doc_id)


def in_process_phase(path: Path, args: argparse.Namespace, queries: list[str]) -> dict:
    """The same searches from threads calling the library directly: the baseline for HTTP's cost."""
    import lateint_lite as li

    stop, tally = threading.Event(), Tally()

    def loop(seed: int) -> None:
        for query in itertools.islice(itertools.cycle(queries), seed, None):
            if stop.is_set():
                return
            start = time.perf_counter()
            idx.search(query, k=args.k)
            tally.record(time.perf_counter() - start, None)

    with li.open(path, readonly=True) as idx:
        idx.search(queries[0], k=args.k)
        wall = run_for([threading.Thread(target=loop, args=(n,)) for n in range(args.clients)], stop, args.duration)
    return {"reads": tally, "wall": wall}


def run_for(threads: list[threading.Thread], stop: threading.Event, duration: float) -> float:
    """Start the threads, let them run ``duration`` seconds, stop and join them; the wall time."""
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(duration)
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S)
    return time.perf_counter() - start


def run_phase(url: str, args: argparse.Namespace, queries: list[str], with_writer: bool) -> dict:
    stop = threading.Event()
    reads, writes, acknowledged = Tally(), Tally(), []
    threads = [
        threading.Thread(target=read_loop, args=(url, queries, args.k, stop, reads, n)) for n in range(args.clients)
    ]
    if with_writer:
        threads.append(threading.Thread(target=write_loop, args=(url, stop, writes, acknowledged, args.write_interval)))
    wall = run_for(threads, stop, args.duration)
    return {"reads": reads, "writes": writes, "acknowledged": acknowledged, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", help="index to serve (copied first; default: the sample corpus)")
    parser.add_argument("--queries", help="BEIR queries.jsonl to cycle through (default: five sample queries)")
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4, help="concurrent searching clients (default 4)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (default 20)")
    parser.add_argument("--write-interval", type=float, default=0.25, help="pause between writes, s (default 0.25)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, help="append/replace the section in this markdown file")
    args = parser.parse_args()

    queries = load_queries(args.queries, args.max_queries)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.index:
            served = folder / "served.lateint"
            shutil.copyfile(args.index, served)
        else:
            served = sample_index(folder)
        import lateint_lite as li

        with li.open(served, readonly=True) as idx:
            before = len(idx)
        direct = in_process_phase(served, args, queries)
        process, url = start_server(served)
        try:
            httpx.get(f"{url}/search", params={"q": queries[0]}, timeout=REQUEST_TIMEOUT_S)  # one warm request
            alone = run_phase(url, args, queries, with_writer=False)
            mixed = run_phase(url, args, queries, with_writer=True)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        with li.open(served, readonly=True) as idx:
            stored = set(idx.ids())
            after = len(idx)
    acked = mixed["acknowledged"]
    lost = [doc_id for doc_id in acked if doc_id not in stored]
    if lost or after != before + len(acked):
        print(
            f"bench_serve: LOST WRITES: {len(lost)} missing, {after - before} stored of {len(acked)}", file=sys.stderr
        )
    rows = [
        "| phase, request | requests | per s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        direct["reads"].row(f"in-process baseline ({args.clients} threads): Index.search", direct["wall"]),
        alone["reads"].row(f"readers only ({args.clients} clients): GET /search", alone["wall"]),
        mixed["reads"].row("readers + 1 writer: GET /search", mixed["wall"]),
        mixed["writes"].row("readers + 1 writer: POST /add (1 doc)", mixed["wall"]),
    ]

    def rate(phase: dict) -> float:
        return len(phase["reads"].latencies) / phase["wall"]

    ratio, http_cost = rate(mixed) / rate(alone), rate(alone) / rate(direct)
    summary = (
        f"Index: {args.index or 'bundled sample corpus'} ({before} documents), {len(queries)} distinct queries, "
        f"k={args.k}, {args.duration:.0f} s per phase, writer pause {args.write_interval} s. "
        f"Search throughput over HTTP / in-process: {http_cost:.2f}; with the writer / without: {ratio:.2f}. "
        f"Writes acknowledged {len(acked)}, stored {after - before}, lost {len(lost)}."
    )
    result = {
        "alone": {"n": len(alone["reads"].latencies), "errors": alone["reads"].errors[:3]},
        "mixed": {"n": len(mixed["reads"].latencies), "errors": mixed["reads"].errors[:3]},
        "writes": {"n": len(mixed["writes"].latencies), "errors": mixed["writes"].errors[:3], "lost": len(lost)},
    }
    print(json.dumps(result), file=sys.stderr)
    write_section(args.out, "HTTP load (bench_serve.py)", "\n".join(rows) + "\n\n" + summary)
    errors = alone["reads"].errors + mixed["reads"].errors + mixed["writes"].errors
    if errors or lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
