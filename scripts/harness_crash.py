#!/usr/bin/env python3
"""Crash harness (issue 13): SIGKILL a writer at random moments; nothing committed is lost,
nothing partial is ever visible, the file always passes ``Index.check()``.

A child process applies a deterministic sequence of writes to one index (add 6 new
documents, upsert 3, delete 2, build with retraining, optimize, and automatic builds
once the index holds ``AUTO_BUILD_TOKENS`` tokens, lowered here to 1,500), appending the
number of each finished operation to a journal (fsync'ed). The parent picks one of the
next operations, waits until the journal shows the writer has started it, and kills it
with SIGKILL a random moment later (up to ``--max-delay``); then it opens the index and
requires:

- ``check()`` reports no problem (SQLite, FTS5, tables pairing up, codec, lists);
- the documents (ids and text versions) equal the model state after the last journaled
  operation, or after the next one (it may have committed just before the kill);
- searches answer.

Then a new child resumes from that state. The model replays the same operation
sequence in memory, so the expected state never comes from the index itself.

    OPENBLAS_NUM_THREADS=1 python scripts/harness_crash.py --kills 100 --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import collections
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from synthetic import VectorsOnly

DIM = 32
TOKENS = 16
OPS = ("add", "add", "upsert", "delete", "add", "build", "upsert", "optimize")


def vectors_of(doc_id: str, version: int) -> np.ndarray:
    """The token vectors of a document version (deterministic, so rebuilds can ask for them)."""
    seed = int(doc_id[1:]) * 1000 + version
    return np.random.default_rng(seed).standard_normal((TOKENS, DIM)).astype(np.float32)


def operation(step: int, state: dict[str, int]) -> tuple[str, list[tuple[str, int]]]:
    """Operation ``step`` given the state before it: (kind, [(doc_id, version)])."""
    kind = OPS[step % len(OPS)]
    rng = np.random.default_rng(step)
    ids = sorted(state, key=lambda d: int(d[1:]))
    if kind == "add" or not ids:
        start = 6 * step
        return "add", [(f"d{start + i}", 0) for i in range(6)]
    if kind == "upsert":
        chosen = rng.choice(len(ids), size=min(3, len(ids)), replace=False)
        return "upsert", [(ids[i], state[ids[i]] + 1) for i in sorted(chosen)]
    if kind == "delete":
        chosen = rng.choice(len(ids), size=min(2, len(ids)), replace=False)
        return "delete", [(ids[i], -1) for i in sorted(chosen)]
    return kind, []


def apply(state: dict[str, int], op: tuple[str, list[tuple[str, int]]]) -> dict[str, int]:
    """The model: the state after an operation."""
    kind, docs = op
    after = dict(state)
    if kind in ("add", "upsert"):
        after.update(docs)
    elif kind == "delete":
        for doc_id, _ in docs:
            after.pop(doc_id, None)
    return after


def model_states(steps: int) -> list[dict[str, int]]:
    """State after 0, 1, ..., steps operations."""
    states = [{}]
    for step in range(steps):
        states.append(apply(states[-1], operation(step, states[-1])))
    return states


def _document(doc_id: str, version: int) -> dict[str, Any]:
    return {"id": doc_id, "text": f"{doc_id} version {version}", "vectors": vectors_of(doc_id, version)}


def child(path: Path, journal: Path, start: int) -> None:
    """Apply operations from ``start`` on, journaling each finished one, until killed."""
    import lateint_lite as li
    from lateint_lite import maintenance

    maintenance.AUTO_BUILD_TOKENS = 1500
    state = model_states(start)[-1]
    with li.open(path, create=not path.exists(), encoder=VectorsOnly(DIM)) as idx, open(journal, "a") as log:
        print("ready", flush=True)
        step = start
        while True:
            op = operation(step, state)
            kind, docs = op
            if kind == "add":
                idx.add([_document(d, v) for d, v in docs])
            elif kind == "upsert":
                idx.upsert([_document(d, v) for d, v in docs])
            elif kind == "delete":
                idx.delete([d for d, _ in docs])
            else:
                state_now = apply(state, op)

                def supplied(ids: list[str], current: dict[str, int] = state_now) -> list[np.ndarray]:
                    return [vectors_of(i, current[i]) for i in ids]

                if kind == "build":
                    idx.build(vectors=supplied, n_centroids=32)
                else:
                    idx.optimize(vectors=supplied)
            state = apply(state, op)
            step += 1
            log.write(f"{step}\n")
            log.flush()
            os.fsync(log.fileno())


def observed(path: Path) -> tuple[dict[str, int], list[str]]:
    """(doc_id -> version, problems) of the index after a kill."""
    import lateint_lite as li

    problems: list[str] = []
    with li.open(path, encoder=VectorsOnly(DIM)) as idx:
        report = idx.check()
        problems += list(report.problems)
        state = {}
        for doc_id in idx.ids():
            text = idx.get(doc_id).text
            state[doc_id] = int(text.rsplit(" ", 1)[1])
        if state:
            query = vectors_of("d1", 0)[:4]
            if not idx.search_vectors(query, k=3):
                problems.append("search returned nothing")
            if not idx.search_vectors(query, k=3, exact=True):
                problems.append("exact search returned nothing")
    return state, problems


def _journaled(journal: Path) -> int:
    """Operations finished according to the journal."""
    lines = journal.read_text().split()
    return int(lines[-1]) if lines else 0


def run(kills: int, seed: int, max_delay: float, log: Any = None) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path, journal = Path(tmp) / "crash.lateint", Path(tmp) / "journal"
        journal.write_text("")
        step = 0
        states = model_states(50)
        for kill in range(kills):
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", str(path), str(journal), str(step)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the writer did not start (exit {proc.wait()})")
            target = step + int(rng.integers(0, len(OPS)))  # the operation to interrupt
            deadline = time.monotonic() + 120
            while _journaled(journal) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(float(rng.uniform(0.0, max_delay)))  # somewhere inside that operation
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            done = _journaled(journal)
            while len(states) < done + 2:
                states = model_states(len(states) + 50)
            state, problems = observed(path)
            if state == states[done]:
                step, outcome = done, "last journaled"
            elif state == states[done + 1]:
                step, outcome = done + 1, "committed, not journaled"
            else:
                step, outcome = done, "LOST OR PARTIAL"
                problems.append(f"documents match neither the state after step {done} nor after {done + 1}")
            in_flight = OPS[done % len(OPS)]
            result = {"kill": kill, "steps": done, "in_flight": in_flight, "outcome": outcome, "problems": problems}
            results.append(result)
            if log:
                print(json.dumps(result), file=log, flush=True)
            if problems:
                break
            journal.write_text(f"{step}\n")
    return results


def summary(results: list[dict[str, Any]]) -> str:
    by_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        by_op[r["in_flight"]][r["outcome"]] += 1
    outcomes = ["last journaled", "committed, not journaled", "LOST OR PARTIAL"]
    rows = [f"| {op} | " + " | ".join(str(c.get(o, 0)) for o in outcomes) + " |" for op, c in sorted(by_op.items())]
    failed = sum(1 for r in results if r["problems"])
    steps = results[-1]["steps"] if results else 0
    return (
        f"{len(results)} SIGKILLs of a writer process over {steps} operations; after each, `check()` and the "
        f"documents against the model state; runs with problems: {failed}.\n\n"
        "| operation in flight | state = last journaled | committed, not yet journaled | lost or partial |\n"
        "|---|---|---|---|\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-delay", type=float, default=0.1, help="seconds into the chosen operation at most (uniform)"
    )
    parser.add_argument("--title", default="Crash harness (harness_crash.py)")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("INDEX", "JOURNAL", "START"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    results = run(args.kills, args.seed, args.max_delay, log=sys.stderr)
    text = summary(results)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from benchutil import write_section

        write_section(args.write, args.title, text)
    else:
        print(text)
    raise SystemExit(1 if any(r["problems"] for r in results) else 0)


if __name__ == "__main__":
    main()
