"""One writer and many readers: threads on one Index, processes on one file."""

from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest
from fakes import HashEncoder
from workers import DIM, GROUP, group_docs, run_reader_writer, slow_adder

import lateint_lite as li


def seeded_index(path, build=True):
    with li.open(path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        for group in range(40):
            idx.add(group_docs(group))
        if build:
            idx.build(residual_dim=16)


#: Fixed amounts of work; the time bound is only there so that a hang fails instead of stalling CI.
GROUPS = 24
SEARCHES = 40
TIME_BOUND_S = 300.0


@pytest.mark.parametrize("build", [False, True])
def test_threads_share_one_index_while_it_is_written(index_path, build):
    seeded_index(index_path, build)
    errors: list[BaseException] = []
    done = {"reads": 0}
    with li.open(index_path, encoder=HashEncoder(dim=DIM)) as idx:

        def search_loop(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                for _ in range(SEARCHES):
                    group = int(rng.integers(0, 40 + GROUPS))
                    hits = idx.search_vectors(
                        rng.standard_normal((4, DIM)).astype(np.float32), k=8, where={"group": group}
                    )
                    assert len(hits) in (0, GROUP)
                    done["reads"] += 1
            except BaseException as exc:  # re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=search_loop, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for group in range(40, 40 + GROUPS):
            idx.add(group_docs(group))
            idx.delete([d["id"] for d in group_docs(group - 1)])
        for t in threads:
            t.join(timeout=TIME_BOUND_S)
        assert not any(t.is_alive() for t in threads), "readers did not finish within the time bound"
    assert not errors, errors[0]
    assert done["reads"] == 4 * SEARCHES
    with li.open(index_path, encoder=HashEncoder(dim=DIM)) as idx:
        assert len(idx) == 39 * GROUP + GROUP  # groups 0..38 remain, plus the last one added


def test_processes_read_consistent_snapshots_while_one_writes(index_path):
    seeded_index(index_path)
    writes, reads, errors, partial = run_reader_writer(
        str(index_path), seconds=TIME_BOUND_S, groups=GROUPS, searches=SEARCHES
    )
    print(f"concurrency: {writes} writes, {reads} reads, {errors} errors, {partial} inconsistent results")
    expected_writes = sum(1 + (g % 3 == 0) + (g % 4 == 0) for g in range(1000, 1000 + GROUPS))
    assert writes == expected_writes and reads == 2 * 2 * SEARCHES  # all of the fixed work was done
    assert errors == 0 and partial == 0


def test_two_writer_processes_queue_and_both_finish_while_readers_read(index_path):
    seeded_index(index_path)
    writes, reads, errors, partial = run_reader_writer(
        str(index_path), seconds=TIME_BOUND_S, groups=GROUPS, searches=SEARCHES, writers=2
    )
    per_writer = [sum(1 + (g % 3 == 0) + (g % 4 == 0) for g in range(first, first + GROUPS)) for first in (1000, 1200)]
    assert writes == sum(per_writer) and reads == 2 * 2 * SEARCHES  # neither writer gave up waiting
    assert errors == 0 and partial == 0
    with li.open(index_path, encoder=HashEncoder(dim=DIM), readonly=True) as idx:
        assert idx.check().ok
        for first in (1000, 1200):
            kept = [g for g in range(first, first + GROUPS) if g % 4 != 0]
            assert all(f"g{g}-0" in idx for g in kept)


def test_a_writer_does_not_wait_for_another_writers_encoding(index_path, tmp_path):
    """Encoding happens before the write lock (issue 12): while one process encodes a large add
    (10 chunks, 0.5 s each), another process's small add commits; when it does, none of the
    large add's documents are in the index yet. Holding the lock while encoding would make the
    small add wait for the large one's commit, and see its 640 documents."""
    seeded_index(index_path)
    before = _count(index_path)
    started = tmp_path / "encoding-started"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    slow = ctx.Process(target=slow_adder, args=(str(index_path), 640, 0.5, str(started), queue))
    slow.start()
    try:
        deadline = time.monotonic() + TIME_BOUND_S
        while not started.exists():
            assert time.monotonic() < deadline and slow.is_alive(), "the slow writer never started encoding"
            time.sleep(0.05)
        with li.open(index_path, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
            idx.add([{"id": "quick", "text": "a quick document"}])
            assert len(idx) == before + 1  # committed while the other add was still encoding
        assert queue.get(timeout=TIME_BOUND_S) == ("slow", 640)
    finally:
        slow.join(timeout=60)
    assert slow.exitcode == 0
    assert _count(index_path) == before + 641


def _count(path) -> int:
    with li.open(path, encoder=HashEncoder(dim=DIM), readonly=True) as idx:
        return len(idx)
