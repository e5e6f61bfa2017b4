"""Peak memory of `lateint add` per phase (issue 12, "bounded memory"): which step holds the most.

Runs what `lateint add IDX corpus` runs, in this process (a fresh index with the default model,
automatic build), while a sampler thread reads VmRSS every 10 ms and charges it to the phase
running at that moment: encoding, the inserting transaction, the build's training sample, codec
training, re-encoding every document, rewriting the inverted lists. ``--index`` instead builds a
copy of an existing unbuilt index (the build phases only, minutes faster).

    OPENBLAS_NUM_THREADS=1 python scripts/bench_add_memory.py --dataset ../shared/data/scifact \\
        --write docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/bench_add_memory.py --index /tmp/scifact-int8.lateint
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import write_section

import lateint_lite as li
from lateint_lite import builder, segments
from lateint_lite.evaluation import load_beir
from lateint_lite.sources import read_documents
from lateint_lite.writer import Writer


def rss_mib(field: str = "VmRSS") -> float:
    """Resident MiB: VmRSS (all), or RssAnon (private memory, without the pages of the index file
    that SQLite maps into the process: those are the OS's page cache, dropped under pressure)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PhaseSampler:
    """Samples VmRSS and keeps each phase's peak; phases nest (the innermost is charged)."""

    def __init__(self) -> None:
        self.stack = ["other"]
        self.peaks: dict[str, float] = {}
        self.anon: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            phase = self.stack[-1]
            self.peaks[phase] = max(self.peaks.get(phase, 0.0), rss_mib())
            self.anon[phase] = max(self.anon.get(phase, 0.0), rss_mib("RssAnon"))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.stack.pop()

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapped)

    def __enter__(self) -> PhaseSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def instrument(sampler: PhaseSampler) -> None:
    sampler.wrap(Writer, "_stage", "encode (staged, no lock)")
    sampler.wrap(Writer, "_insert", "insert (write transaction)")
    sampler.wrap(builder, "draw_sample", "build: read training sample")
    sampler.wrap(builder, "train_codec", "build: train codec")
    sampler.wrap(builder, "_reencode_all", "build: re-encode documents")
    sampler.wrap(segments, "replace_all", "build: write inverted lists")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="BEIR folder: add its corpus to a new index, auto build")
    source.add_argument("--index", type=Path, help="build a copy of this unbuilt index")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    sampler = PhaseSampler()
    instrument(sampler)
    baseline = rss_mib()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp, sampler:
        path = Path(tmp) / "index.lateint"
        started = time.perf_counter()
        if args.dataset is not None:
            docs = list(read_documents(str(load_beir(args.dataset).corpus)))
            with sampler.phase("read corpus + open"), li.open(path, create=True) as idx:
                idx.add(docs, progress=False)
                tokens = idx.info().tokens
            what = f"`add` of {len(docs):,} {args.dataset.name} documents (default model, automatic build)"
        else:
            shutil.copy(args.index, path)
            with li.open(path) as idx:
                idx.build()
                tokens = idx.info().tokens
            what = f"`build()` of a copy of {args.index.name} (unbuilt)"
        total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        f"| {name} | {sampler.seconds.get(name, 0):.0f} | {mib:,.0f} | {sampler.anon.get(name, 0):,.0f} |"
        for name, mib in sorted(sampler.peaks.items(), key=lambda item: -item[1])
    ]
    body = (
        f"{what}: {tokens:,} tokens stored, {total:.0f} s; RSS before {baseline:,.0f} MiB, peak "
        f"(ru_maxrss) **{peak:,.0f} MiB**. Peak VmRSS while each phase ran (sampled every 10 ms; nested phases "
        "charge the innermost); RssAnon leaves out the index file's pages that SQLite maps (mmap, up to 1 GiB), "
        "which are the OS's page cache:\n\n| phase | seconds | peak VmRSS MiB | peak RssAnon MiB |\n"
        "|---|---|---|---|\n" + "\n".join(rows)
    )
    title = "`add` through the encoder" if args.dataset is not None else "`build()` of an unbuilt index"
    write_section(args.write, f"Peak memory per phase: {title} (bench_add_memory.py)", body)


if __name__ == "__main__":
    main()
