"""One writer and many readers: threads on one Index, processes on one file."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import HashEncoder
from workers import DIM, GROUP, group_docs, run_reader_writer

import lateint_lite as li


def seeded_index(path, build=True):
    with li.open(path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        for group in range(40):
            idx.add(group_docs(group))
        if build:
            idx.build(residual_dim=16)


@pytest.mark.parametrize("build", [False, True])
def test_threads_share_one_index_while_it_is_written(index_path, build):
    seeded_index(index_path, build)
    errors: list[BaseException] = []
    counts = {"reads": 0}
    stop = time.monotonic() + 3.0
    with li.open(index_path, encoder=HashEncoder(dim=DIM)) as idx:

        def search_loop(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                while time.monotonic() < stop:
                    group = int(rng.integers(0, 60))
                    hits = idx.search_vectors(
                        rng.standard_normal((4, DIM)).astype(np.float32), k=8, where={"group": group}
                    )
                    assert len(hits) in (0, GROUP)
                    counts["reads"] += 1
            except BaseException as exc:  # re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=search_loop, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        group = 40
        while time.monotonic() < stop:
            idx.add(group_docs(group))
            idx.delete([d["id"] for d in group_docs(group - 1)])
            group += 1
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert counts["reads"] > 10


def test_processes_read_consistent_snapshots_while_one_writes(index_path):
    seeded_index(index_path)
    writes, reads, errors, partial = run_reader_writer(str(index_path), seconds=6.0)
    print(f"concurrency: {writes} writes, {reads} reads, {errors} errors, {partial} inconsistent results")
    assert writes > 5 and reads > 20
    assert errors == 0 and partial == 0
