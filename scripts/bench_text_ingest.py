"""Text ingest through the default encoder: `lateint add` of the first N documents of a BEIR
corpus into a fresh index, with this checkout and with other checkouts, alternating.

Each run is a fresh process (``python -m lateint_lite add INDEX DOCS.jsonl --no-build
--no-progress``) with one checkout's lateint_lite on PYTHONPATH, started outside any checkout;
its wall time (model load included, as a user sees it) and peak RSS (``wait4``) are recorded.
Set-ups alternate within each round so they see the same minutes of a noisy VM; the ratios of
one run are the result.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_text_ingest.py --dataset ../shared/data/scifact \\
        --docs 1000 --rounds 3 --checkout issue=/tmp/wt-issue --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, REPO, write_section

from lateint_lite.evaluation import load_beir
from lateint_lite.sources import open_text

SECTION = "Text ingest through the encoder, checkouts alternating (bench_text_ingest.py)"


def first_documents(dataset: Path, n: int, out: Path) -> int:
    """Write the first ``n`` lines of the dataset's corpus to ``out``; how many were written."""
    with open_text(str(load_beir(dataset).corpus)) as lines, out.open("w", encoding="utf-8") as sink:
        written = 0
        for line in itertools.islice(lines, n):
            sink.write(line)
            written += 1
    return written


def checkout_env(checkout: Path, folder: Path) -> dict[str, str]:
    """The environment that runs ``checkout``'s lateint_lite (checked: an installed copy must not win)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OPENBLAS_NUM_THREADS": "1"}
    probe = [sys.executable, "-c", "import lateint_lite; print(lateint_lite.__file__)"]
    module = subprocess.run(probe, env=env, cwd=folder, check=True, capture_output=True, text=True).stdout.strip()
    if not module.startswith(str(checkout)):
        raise SystemExit(f"{checkout} ran lateint_lite from {module}")
    return env


def timed_add(env: dict[str, str], docs: Path, folder: Path) -> tuple[float, float, float]:
    """(seconds, CPU seconds, peak RSS MiB) of one `lateint add` into a fresh index with the code
    ``env`` runs. CPU seconds (user + system) are less sensitive to another guest's load than
    wall time (time stolen by the hypervisor is not charged to the process)."""
    index = folder / "ingest.lateint"
    for leftover in folder.glob("ingest.lateint*"):
        leftover.unlink()
    command = [sys.executable, "-m", "lateint_lite", "add", str(index), str(docs), "--no-build", "--no-progress"]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode:
        raise SystemExit(f"{env['PYTHONPATH']}: lateint add failed ({child.returncode}): {errors.strip()[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def report(results: dict[str, list[tuple[float, float, float]]], n_docs: int, dataset: Path) -> str:
    names = list(results)
    rows = [
        "| checkout | runs s | median s | documents/s | CPU s (median) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    medians = {name: statistics.median(s for s, _, _ in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(c for _, c, _ in runs) for name, runs in results.items()}
    for name in names:
        runs = results[name]
        rows.append(
            f"| {name} | {', '.join(f'{s:.1f}' for s, _, _ in runs)} | {medians[name]:.1f} | "
            f"{n_docs / medians[name]:.1f} | {cpu[name]:.1f} | {max(r for _, _, r in runs):.0f} |"
        )
    head = names[0]
    ratios = ", ".join(
        f"{head} vs {name}: {medians[name] / medians[head]:.2f}x wall, {cpu[name] / cpu[head]:.2f}x CPU"
        for name in names[1:]
    )
    table = "\n".join(rows)
    return (
        f"First {n_docs} documents of {dataset.name}, default model, fresh index per run, "
        f"`lateint add --no-build` (model load included).\n\n{table}\n\n"
        f"Speed ratios (medians; above 1 means the first is faster): {ratios}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATA / "scifact")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--checkout", action="append", default=[], metavar="NAME=PATH", help="another checkout to compare (repeatable)"
    )
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    checkouts = {"this": REPO}
    for item in args.checkout:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--checkout wants NAME=PATH, got {item!r}")
        checkouts[name] = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="lateint-text-ingest-") as tmp:
        folder = Path(tmp)
        docs = folder / "docs.jsonl"
        n_docs = first_documents(args.dataset, args.docs, docs)
        envs = {name: checkout_env(checkout, folder) for name, checkout in checkouts.items()}
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in checkouts}
        for round_number in range(args.rounds):
            order = list(envs.items())
            if round_number % 2:
                order.reverse()
            for name, env in order:
                seconds, cpu, rss = timed_add(env, docs, folder)
                results[name].append((seconds, cpu, rss))
                print(f"round {round_number + 1} {name}: {seconds:.1f} s, {cpu:.1f} CPU s, {rss:.0f} MiB", flush=True)
    body = report(results, n_docs, args.dataset)
    print(body)
    write_section(args.write, SECTION, body)


if __name__ == "__main__":
    main()
