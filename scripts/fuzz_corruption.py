#!/usr/bin/env python3
"""Corruption fuzz (issue 13): damaged index files must fail cleanly, never crash or hang.

Two small base indexes (unbuilt int8, built residual) are copied and damaged, one
mutation per case: page bit flips, truncation, dropped rows or tables, tampered
meta, config, codec arrays, token blobs and inverted lists. Each damaged copy is
then opened read-only and used: info, check, exact and pruned MaxSim search, BM25,
get. A case ends as

- ``ok``: every call returned (results may differ from the base's: a flipped bit
  inside a payload is not detectable without checksums; ``changed`` counts those),
- ``LateIntError``: a call raised one (the class is recorded),
- ``raw``: a call raised anything else (a bug),
- ``crash``: the worker process died (a bug: e.g. a kernel read out of bounds),
- ``hang``: a case took longer than ``--timeout`` seconds (a bug).

Cases run in a long-lived worker process fed case numbers on stdin, so a crash
costs one restart, not the harness. Deterministic per ``--seed``.

    OPENBLAS_NUM_THREADS=1 python scripts/fuzz_corruption.py --cases 1000 --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import collections
import json
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from synthetic import VectorsOnly

DIM = 32
N_DOCS = 160
#: Outcomes that are bugs: anything but a result or a specific LateIntError.
BAD_OUTCOMES = ("InternalError", "raw", "crash", "hang")
MUTATIONS = (
    "flip_page_bits",
    "truncate",
    "drop_rows",
    "drop_table",
    "tamper_meta",
    "tamper_config",
    "tamper_codec_array",
    "tamper_tokens",
    "tamper_ivf",
    "tamper_centroids",
)


def make_bases(folder: Path) -> dict[str, Path]:
    """The two base indexes: unbuilt (int8) and built (residual)."""
    import lateint_lite as li

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N_DOCS, 16, DIM)).astype(np.float32)
    words = ["tide", "moon", "salt", "river", "stone", "cloud", "ember", "frost"]
    docs = [
        {
            "id": f"d{i}",
            "text": " ".join(words[(i * 3 + j) % len(words)] for j in range(6)),
            "vectors": vectors[i],
            "meta": {"n": i, "even": i % 2 == 0},
        }
        for i in range(N_DOCS)
    ]
    bases = {}
    for kind in ("unbuilt", "built"):
        path = folder / f"{kind}.lateint"
        with li.open(path, create=True, encoder=VectorsOnly(DIM), auto_build=False) as idx:
            idx.add(docs)
            if kind == "built":
                idx.build(n_centroids=32)
        _single_file(path)
        bases[kind] = path
    return bases


def _single_file(path: Path) -> None:
    """Fold the WAL into the main file and switch to rollback journaling, so one file is the index."""
    import apsw

    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


# -- mutations --------------------------------------------------------------------------------


def _sql(path: Path, statements: list[tuple[str, tuple]]) -> None:
    import apsw
    import sqlite_vec

    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    for sql, params in statements:
        conn.execute(sql, params)
    conn.close()


def _random_bytes(rng: np.random.Generator, n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def mutate(path: Path, mutation: str, rng: np.random.Generator) -> str:
    """Damage ``path`` in place; returns a short description of what was done."""
    size = path.stat().st_size
    if mutation == "flip_page_bits":
        data = bytearray(path.read_bytes())
        page = int(rng.integers(1, size // 4096)) if size > 4096 else 0
        flips = int(rng.integers(1, 9))
        for _ in range(flips):
            at = page * 4096 + int(rng.integers(0, 4096))
            data[at] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        return f"{flips} bit(s) flipped in page {page}"
    if mutation == "truncate":
        cut = int(rng.integers(0, size))
        with open(path, "r+b") as f:
            f.truncate(cut)
        return f"truncated to {cut} of {size} bytes"
    if mutation == "drop_rows":
        table = str(
            rng.choice(
                [
                    "documents",
                    "doc_tokens",
                    "segment_lists",
                    "segments",
                    "tombstones",
                    "doc_vectors",
                    "codec_arrays",
                    "meta",
                    "centroids",
                ]
            )
        )
        key = "rowid" if table in ("doc_vectors", "centroids") else None
        where = f"{key or 'rowid'} % {int(rng.integers(2, 9))} = {int(rng.integers(0, 2))}"
        if table in ("codec_arrays", "meta"):
            where = "1" if rng.random() < 0.3 else "random() % 2 = 0"
        _sql(path, [(f"DELETE FROM {table} WHERE {where}", ())])
        return f"rows deleted from {table} where {where}"
    if mutation == "drop_table":
        table = str(
            rng.choice(
                ["documents_fts", "segment_lists", "segments", "doc_vectors", "codec_arrays", "doc_tokens", "centroids"]
            )
        )
        _sql(path, [(f"DROP TABLE {table}", ())])
        return f"table {table} dropped"
    if mutation == "tamper_meta":
        value = str(rng.choice(["", "-1", "99999999999999999999", "x", "null", "{}", "1e308"]))
        key = str(rng.choice(["write_counter", "dim", "created_at", "library_version"]))
        _sql(path, [("UPDATE meta SET value = ? WHERE key = ?", (value, key))])
        return f"meta {key} = {value!r}"
    if mutation == "tamper_config":
        options = [
            "{}",
            "not json",
            '{"dim": -3}',
            "[]",
            '{"codec": {"kind": "zip"}}',
        ]
        config = str(rng.choice(options))
        if rng.random() < 0.5:
            import apsw

            conn = apsw.Connection(str(path))
            current = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
            conn.close()
            field = str(rng.choice(sorted(current)))
            current[field] = [None, -1, 10**30, "x", [], {}][int(rng.integers(0, 6))]
            config = json.dumps(current)
        _sql(path, [("UPDATE meta SET value = ? WHERE key = 'config'", (config,))])
        return f"config = {config[:80]}"
    if mutation == "tamper_codec_array":
        choice = int(rng.integers(0, 3))
        if choice == 0:
            shape = str(rng.choice(["[]", "[0]", "[-1, 4]", "[99999999, 99999999]", "x", "[3, 3]"]))
            _sql(
                path,
                [
                    (
                        "UPDATE codec_arrays SET shape = ? WHERE name IN (SELECT name FROM codec_arrays "
                        "ORDER BY random() LIMIT 1)",
                        (shape,),
                    )
                ],
            )
            return f"a codec array's shape = {shape}"
        if choice == 1:
            dtype = str(rng.choice(["<f8", "|O", "<i2", "garbage", "<U4"]))
            _sql(
                path,
                [
                    (
                        "UPDATE codec_arrays SET dtype = ? WHERE name IN (SELECT name FROM codec_arrays "
                        "ORDER BY random() LIMIT 1)",
                        (dtype,),
                    )
                ],
            )
            return f"a codec array's dtype = {dtype}"
        blob = _random_bytes(rng, int(rng.integers(0, 64)))
        _sql(
            path,
            [
                (
                    "UPDATE codec_arrays SET data = ? WHERE name IN (SELECT name FROM codec_arrays "
                    "ORDER BY random() LIMIT 1)",
                    (blob,),
                )
            ],
        )
        return f"a codec array's data = {len(blob)} random bytes"
    if mutation == "tamper_tokens":
        column = str(rng.choice(["codes", "payload"]))
        doc = int(rng.integers(1, N_DOCS + 1))
        how = int(rng.integers(0, 3))
        if how == 0:
            blob: bytes | None = _random_bytes(rng, int(rng.integers(0, 200)))
        elif how == 1:
            blob = b"\xff" * int(rng.integers(1, 600))
        else:
            blob = None if column == "codes" else b""
        _sql(path, [(f"UPDATE doc_tokens SET {column} = ? WHERE doc_id = ?", (blob, doc))])
        return f"doc_tokens.{column} of doc {doc}: {'NULL' if blob is None else len(blob)} bytes"
    if mutation == "tamper_ivf":
        blob = _random_bytes(rng, int(rng.integers(0, 40)))
        if rng.random() < 0.3:
            blob = b"\xff" * 12  # an unterminated varint
        centroid = int(rng.integers(-2, 40))
        _sql(path, [("INSERT OR REPLACE INTO ivf(centroid_id, doc_ids) VALUES (?, ?)", (centroid, blob))])
        return f"ivf row {centroid} = {len(blob)} bytes"
    if mutation == "tamper_centroids":
        blob = _random_bytes(rng, DIM)
        row = int(rng.integers(0, 32))
        _sql(
            path,
            [
                ("DELETE FROM centroids WHERE rowid = ?", (row,)),
                ("INSERT INTO centroids(rowid, embedding) VALUES (?, vec_int8(?))", (row, blob)),
            ],
        )
        return f"centroid row {row} = random int8 values"
    raise ValueError(mutation)


# -- using a damaged file ------------------------------------------------------------------


def exercise(path: Path) -> list[Any]:
    """Every read a user makes; returns what they returned (for comparison with the base)."""
    import lateint_lite as li

    rng = np.random.default_rng(1)
    query = rng.standard_normal((6, DIM)).astype(np.float32)
    out: list[Any] = []
    with li.open(path, readonly=True, encoder=VectorsOnly(DIM)) as idx:
        out.append(idx.info().documents)
        out.append(idx.check().ok)
        out.append([(h.id, round(h.score, 4)) for h in idx.search_vectors(query, k=5, exact=True)])
        out.append([(h.id, round(h.score, 4)) for h in idx.search_vectors(query, k=5)])
        out.append([h.id for h in idx.search("tide moon", k=5, mode="bm25")])
        out.append([h.id for h in idx.search_vectors(query, k=5, where={"even": True})])
        out.append(idx.get("d3").text)
    return out


def run_case(case: int, seed: int, bases: dict[str, Path], baselines: dict[str, Any], work: Path) -> dict[str, Any]:
    from lateint_lite.errors import InternalError, LateIntError

    rng = np.random.default_rng((seed, case))
    kind = "built" if case % 2 else "unbuilt"
    mutation = MUTATIONS[(case // 2) % len(MUTATIONS)]
    target = work / f"case{case}.lateint"
    shutil.copyfile(bases[kind], target)
    try:
        what = mutate(target, mutation, rng)
    except Exception as exc:  # the mutation itself could not be applied (e.g. table already gone)
        what = f"mutation not applicable: {type(exc).__name__}"
    result: dict[str, Any] = {"case": case, "base": kind, "mutation": mutation, "what": what}
    try:
        got = exercise(target)
        result["outcome"] = "ok"
        result["changed"] = json.dumps(got) != json.dumps(baselines[kind])
    except InternalError as exc:  # a foreign exception the boundary caught: still a bug
        result["outcome"] = "InternalError"
        result["error"] = f"{exc.__cause__!r}"[:300]
    except LateIntError as exc:
        result["outcome"] = "LateIntError"
        result["error"] = type(exc).__name__
    except Exception as exc:
        result["outcome"] = "raw"
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    return result


def worker(seed: int, folder: Path) -> None:
    """Read case numbers on stdin, write one JSON result per line on stdout."""
    bases = {kind: folder / f"{kind}.lateint" for kind in ("unbuilt", "built")}
    baselines = {kind: exercise(path) for kind, path in bases.items()}
    work = Path(tempfile.mkdtemp(dir=folder))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_case(int(line), seed, bases, baselines, work)), flush=True)


# -- the harness --------------------------------------------------------------------------------


class Worker:
    def __init__(self, seed: int, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--seed", str(seed), "--folder", str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._readline(300)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError("the fuzz worker did not start")

    def _readline(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def run(self, case: int, timeout: float) -> dict[str, Any] | None:
        """The case's result, or None when the worker died or timed out (it is then killed)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{case}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        line = self._readline(timeout)
        if line:
            return json.loads(line)
        return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def fuzz(cases: int, seed: int, timeout: float, log: Any = None) -> list[dict[str, Any]]:
    """Run ``cases`` cases; returns one result per case."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_bases(folder)
        current = Worker(seed, folder)
        for case in range(cases):
            started = time.perf_counter()
            result = current.run(case, timeout)
            if result is None:
                outcome = "crash" if not current.alive() else "hang"
                code = current.proc.returncode
                current.kill()
                result = {"case": case, "outcome": outcome, "error": f"exit {code}", "mutation": "?"}
                current = Worker(seed, folder)
            result["seconds"] = round(time.perf_counter() - started, 2)
            results.append(result)
            if log:
                print(json.dumps(result), file=log, flush=True)
        current.proc.stdin.close()  # type: ignore[union-attr]
        current.proc.wait(timeout=60)
    return results


def summary(results: list[dict[str, Any]]) -> str:
    by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        label = r["outcome"] if r["outcome"] != "ok" else ("ok, results changed" if r.get("changed") else "ok")
        by_mutation[r.get("mutation", "?")][label] += 1
    outcomes = ["ok", "ok, results changed", "LateIntError", "InternalError", "raw", "crash", "hang"]
    rows = [f"| {m} | " + " | ".join(str(c.get(o, 0)) for o in outcomes) + " |" for m, c in sorted(by_mutation.items())]
    total = collections.Counter()
    for c in by_mutation.values():
        total.update(c)
    rows.append("| **all** | " + " | ".join(f"**{total.get(o, 0)}**" for o in outcomes) + " |")
    errors = collections.Counter(r.get("error") for r in results if r["outcome"] == "LateIntError")
    return (
        f"{len(results)} damaged copies of two {N_DOCS}-document indexes (unbuilt, built), one mutation each.\n\n"
        "| mutation | "
        + " | ".join(outcomes)
        + " |\n|---|"
        + "---|" * len(outcomes)
        + "\n"
        + "\n".join(rows)
        + "\n\nLateIntError classes: "
        + ", ".join(f"{k} {v}" for k, v in errors.most_common())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--title", default="Corruption fuzz (fuzz_corruption.py)")
    parser.add_argument("--write", type=Path, help="markdown file to add the result section to")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.seed, args.folder)
        return
    results = fuzz(args.cases, args.seed, args.timeout, log=sys.stderr)
    text = summary(results)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from benchutil import write_section

        write_section(args.write, args.title, text)
    bad = [r for r in results if r["outcome"] in BAD_OUTCOMES]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
