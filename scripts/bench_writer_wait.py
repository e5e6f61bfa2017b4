"""How long a second writer waits while another process adds many documents, before vs after.

For each revision (a checkout on ``PYTHONPATH``): a fresh index with the default model holds a few
SciFact abstracts; process A adds the next N abstracts (encoding them with the ONNX model); once A
has been running ``--head-start`` seconds, process B adds one short document and reports how long
its ``add`` took. Before issue 12's change A held the write lock while it encoded, so B waited
for A's whole add; now B waits only for A's SQL. Revisions run one after the other.

    git worktree add /tmp/before <rev>
    OPENBLAS_NUM_THREADS=1 python scripts/bench_writer_wait.py --before /tmp/before --docs 1000 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, REPO, write_section

ADD = """
import json, sys, time
import lateint_lite as li
from lateint_lite.sources import read_documents
path, corpus, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
docs = []
for n, doc in enumerate(read_documents(corpus)):
    if n >= first + count:
        break
    if n >= first:
        docs.append(doc)
with li.open(path, create=True, auto_build=False) as idx:
    start = time.perf_counter()
    idx.add(docs)
    print(json.dumps({"seconds": time.perf_counter() - start, "documents": len(idx)}))
"""


def run_add(checkout: Path, index: Path, corpus: Path, first: int, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-c", ADD, str(index), str(corpus), str(first), str(count)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=index.parent)


def measure(checkout: Path, corpus: Path, docs: int, head_start: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "wait.lateint"
        seed = run_add(checkout, index, corpus, 0, 5)
        seed.communicate()
        big = run_add(checkout, index, corpus, 10, docs)
        time.sleep(head_start)
        small = run_add(checkout, index, corpus, 5, 1)
        small_out, _ = small.communicate()
        big_out, _ = big.communicate()
        waited = json.loads(small_out)
        added = json.loads(big_out)
        return {
            "small_add_s": waited["seconds"],
            "small_saw": waited["documents"],
            "big_add_s": added["seconds"],
            "big_saw": added["documents"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the older revision")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--head-start", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    corpus = args.data / "scifact" / "corpus.jsonl"
    if not corpus.exists():
        corpus = corpus.with_suffix(".jsonl.gz")
    rows = [
        "| revision | one-document add by writer B (s) | documents B saw after its add | "
        f"{args.docs}-document add by writer A (s) |",
        "|---|---:|---:|---:|",
    ]
    for label, checkout in (("before", args.before.resolve()), ("after", REPO)):
        got = measure(checkout, corpus, args.docs, args.head_start)
        rows.append(f"| {label} | {got['small_add_s']:.2f} | {got['small_saw']} | {got['big_add_s']:.1f} |")
    body = "\n".join(rows) + (
        f"\n\nA fresh index (default model, unbuilt) holds 5 SciFact abstracts; writer A (a process) adds the "
        f"next {args.docs}; {args.head_start:.0f} s later writer B (another process) adds one. B's time includes "
        "opening the index and encoding its own document. B seeing 6 documents means it committed before A; "
        f"{args.docs + 6} means it waited for A's commit."
    )
    write_section(args.out, "Second writer's wait during a large add (bench_writer_wait.py)", body)


if __name__ == "__main__":
    main()
