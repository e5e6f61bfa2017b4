"""Processes for the concurrency tests (importable by multiprocessing's spawn)."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
from fakes import HashEncoder

import lateint_lite as li

DIM = 32
GROUP = 5


def group_docs(group: int, version: int = 0) -> list[dict]:
    rng = np.random.default_rng(group * 10 + version)
    return [
        {
            "id": f"g{group}-{i}",
            "text": f"group {group} doc {i}",
            "vectors": rng.standard_normal((6, DIM)).astype(np.float32),
            "meta": {"group": group, "version": version},
        }
        for i in range(GROUP)
    ]


def writer(path: str, seconds: float, queue, groups: int | None = None, first: int = 1000) -> None:
    """Add, upsert and delete whole groups, one transaction each: ``groups`` of them
    (stopping early only at ``seconds``), or as many as ``seconds`` allow."""
    writes = 0
    deadline = time.monotonic() + seconds
    with li.open(path, encoder=HashEncoder(dim=DIM)) as idx:
        group = first
        while time.monotonic() < deadline and (groups is None or group < first + groups):
            idx.add(group_docs(group))
            writes += 1
            if group % 3 == 0:
                idx.upsert(group_docs(group, version=1))
                writes += 1
            if group % 4 == 0:
                idx.delete([d["id"] for d in group_docs(group)])
                writes += 1
            group += 1
    queue.put(("writer", writes, 0, 0))


def reader(path: str, seconds: float, seed: int, queue, searches: int | None = None) -> None:
    """Search while the writer commits; every group must be seen whole or not at all.
    ``searches`` pairs of searches (stopping early only at ``seconds``), or as many as fit."""
    rng = np.random.default_rng(seed)
    reads = errors = partial = 0
    deadline = time.monotonic() + seconds
    with li.open(path, encoder=HashEncoder(dim=DIM), readonly=True) as idx:
        while time.monotonic() < deadline and (searches is None or reads < 2 * searches):
            try:
                group = int(rng.integers(1000, 1000 + 400))
                hits = idx.search_vectors(
                    rng.standard_normal((4, DIM)).astype(np.float32), k=20, where={"group": group}
                )
                versions = {h.meta["version"] for h in hits}
                if len(hits) not in (0, GROUP) or len(versions) > 1:
                    partial += 1
                hits = idx.search_vectors(rng.standard_normal((4, DIM)).astype(np.float32), k=10)
                scores = [h.score for h in hits]
                if scores != sorted(scores, reverse=True):
                    partial += 1
                reads += 2
            except Exception:  # counted and reported, never swallowed silently
                errors += 1
    queue.put(("reader", reads, errors, partial))


def run_reader_writer(
    path: str,
    seconds: float,
    readers: int = 2,
    groups: int | None = None,
    searches: int | None = None,
    writers: int = 1,
) -> tuple[int, int, int, int]:
    """One writer and ``readers`` reader processes on ``path``: (writes, reads, errors, inconsistent).

    Benchmarks give ``seconds`` only (throughput); tests give fixed ``groups`` and
    ``searches`` with ``seconds`` as a generous bound, and check the counts were done."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(path, seconds, queue, groups, 1000 + 200 * w)) for w in range(writers)]
    procs += [ctx.Process(target=reader, args=(path, seconds, seed, queue, searches)) for seed in range(1, readers + 1)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"worker exited with {p.exitcode}")
    writes = sum(r[1] for r in results if r[0] == "writer")
    reads = sum(r[1] for r in results if r[0] == "reader")
    return writes, reads, sum(r[2] for r in results), sum(r[3] for r in results)


def slow_adder(path: str, n_docs: int, delay: float, started: str, queue) -> None:
    """Add ``n_docs`` text documents through an encoder that sleeps ``delay`` per chunk."""
    from fakes import SlowEncoder

    with li.open(path, encoder=SlowEncoder(delay, started, dim=DIM), auto_build=False) as idx:
        idx.add([{"id": f"slow-{i}", "text": f"slow document {i} about tides"} for i in range(n_docs)])
    queue.put(("slow", n_docs))
