"""The ``lateint`` command line.

Every failure becomes one ``lateint: error: ...`` line on stderr and the
error's exit status (docs/errors.md: 1 for most, 74 I/O, 75 busy, 77
read-only, 70 internal); usage errors exit 2; Ctrl-C exits 130. Results go to stdout
(tab-separated, or JSON with ``--json``), progress bars to stderr (only on a TTY).
"""

from __future__ import annotations

import os

# The kernels run numba threads; OpenBLAS threads would compete with them
# (measured ~30% slower). Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from ._version import __version__
from .boundary import translate
from .config import AUTO, DEFAULT_NBITS, DEFAULT_RESIDUAL_DIM, DEFAULT_SEED, NBITS
from .documents import preview
from .errors import InvalidInputError, LateIntError
from .evaluation import DEFAULT_MODES as DEFAULT_EVAL_MODES
from .sources import displayable

DEMO_QUERIES = (
    "why do my eyes water when I chop vegetables?",
    "how does a database stay consistent after a crash?",
    "what happens when a massive star dies?",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lateint",
        description="Embedded late-interaction (ColBERT-style) search in one SQLite file.",
    )
    parser.add_argument("--version", action="version", version=f"lateint-lite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="create an empty index file")
    p.add_argument("index", help="index file to create")
    _model_option(p)
    p.add_argument(
        "--skiplist",
        help="document tokens to drop: 'punctuation', 'none', or a comma-separated list (default: the model's)",
    )
    p.add_argument(
        "--passage-length",
        type=int,
        metavar="TOKENS",
        help="split documents longer than this into passages of this many tokens (default: the model's, 256)",
    )
    p.add_argument(
        "--passage-overlap",
        type=int,
        metavar="TOKENS",
        help="tokens consecutive passages share (default: the model's, or a quarter of --passage-length)",
    )
    p.add_argument(
        "--max-passages",
        type=int,
        metavar="N",
        help="passages a document keeps at most; the rest of a longer one is not indexed (default: the model's, 64)",
    )
    p.add_argument(
        "--embed-model",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store the model's files in the index (default: only when --model is a folder)",
    )

    for name, text in (
        ("add", "encode documents and add them (creates the index if missing)"),
        ("upsert", "add documents, replacing those whose id exists"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("index", help="index file")
        p.add_argument(
            "inputs",
            nargs="+",
            metavar="PATH",
            help="JSON Lines (.jsonl[.gz], - for stdin), text/Markdown/reST/HTML/PDF files (.gz too), or folders",
        )
        p.add_argument(
            "--glob",
            action="append",
            metavar="PATTERN",
            help="files to take from folders, e.g. '*.md' (repeatable; default: text, Markdown, reST, HTML, PDF)",
        )
        p.add_argument(
            "--encoding",
            metavar="CODEC",
            help="read text files that are not UTF-8 in this encoding, e.g. cp1252 (default: skip them)",
        )
        p.add_argument(
            "--skip-unchanged",
            action="store_true",
            help="skip files whose content hash matches the stored document; changed files replace theirs",
        )
        _model_option(p)
        p.add_argument(
            "--max-passages",
            type=int,
            metavar="N",
            help="when the index is new: passages a document keeps at most (default: the model's, 64)",
        )
        p.add_argument("--batch-size", type=int, default=64, help="documents per write batch (default 64)")
        p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
        p.add_argument("--no-build", action="store_true", help="do not compress the index automatically")

    p = sub.add_parser("build", help="compress the index (centroids, residual codec, inverted lists)")
    p.add_argument("index", help="index file")
    p.add_argument(
        "--nbits",
        type=int,
        default=DEFAULT_NBITS,
        choices=NBITS,
        help=f"bits per residual value (default {DEFAULT_NBITS})",
    )
    p.add_argument(
        "--residual-dim",
        type=int,
        help=f"residual directions kept (default {DEFAULT_RESIDUAL_DIM}, or all of a smaller model; 0 = all)",
    )
    p.add_argument("--centroids", type=int, help="number of centroids (default: PLAID's rule)")
    p.add_argument("--pool-factor", type=int, help="token pooling: keep ~1/N of each document's tokens")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"k-means seed (default {DEFAULT_SEED})")
    _lossy_option(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")

    p = sub.add_parser("search", help="print the best documents for a query")
    p.add_argument("index", help="index file")
    _query_options(p, ("maxsim", "bm25", "hybrid", "pooled"))
    p.add_argument("--ncells", type=int, help="PLAID: cells probed per query token")
    p.add_argument("--threshold", type=float, help="PLAID: centroid score threshold")
    p.add_argument("--ndocs", type=int, help="PLAID: candidates kept after centroid scoring")
    _where_options(p)

    p = sub.add_parser("rerank", help="score given documents against a query by exact MaxSim")
    p.add_argument("index", help="index file")
    p.add_argument("query", help="query text")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids (from any first-stage retriever)")
    p.add_argument("-k", type=int, help="keep the best k (default: all)")
    _output_options(p)

    p = sub.add_parser("export", help="write a compact single-file copy for shipping (no -wal/-shm)")
    p.add_argument("index", help="index file")
    p.add_argument("target", help="new file to write")
    p.add_argument("--with-model", action="store_true", help="carry the model inside the copy (opens anywhere)")

    p = sub.add_parser("optimize", help="retrain when the corpus grew or drifted, rebuild lists, VACUUM")
    p.add_argument("index", help="index file")
    p.add_argument("--retrain", action="store_true", help="retrain the centroids even if not due")
    _lossy_option(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("migrate", help="bring an index written by an older release to the current schema")
    p.add_argument("index", help="index file")

    p = sub.add_parser("get", help="print one stored document")
    p.add_argument("index", help="index file")
    p.add_argument("id", help="document id")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("delete", help="delete documents by id")
    p.add_argument("index", help="index file")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids")
    p.add_argument("--missing-ok", action="store_true", help="ignore ids that are not in the index")

    p = sub.add_parser("info", help="print counts, sizes and model of an index")
    p.add_argument("index", help="index file")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("ids", help="list document ids, one per line, in insertion order")
    p.add_argument("index", help="index file")
    p.add_argument("--offset", type=int, default=0, help="skip this many ids first (default 0)")
    p.add_argument("--limit", type=int, help="print at most this many ids (default: all)")

    p = sub.add_parser("check", help="verify an index without changing it (exit 1 when problems are found)")
    p.add_argument("index", help="index file")
    p.add_argument("--readonly", action="store_true", help="open read-only (skips the full-text index check)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("eval", help="evaluate on a BEIR-layout dataset folder (needs the eval extra)")
    p.add_argument("dataset", help="folder with corpus.jsonl[.gz], queries.jsonl[.gz], qrels/test.tsv")
    p.add_argument("--index", help="index file to build or reuse (default: ./<dataset>.lateint)")
    p.add_argument(
        "--modes",
        default=",".join(DEFAULT_EVAL_MODES),
        help=f"comma-separated modes (default {','.join(DEFAULT_EVAL_MODES)})",
    )
    p.add_argument("--queries", type=int, help="evaluate only the first N test queries")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="never show progress bars")

    p = sub.add_parser("serve", help="serve an index over HTTP: JSON API and a search page (needs the serve extra)")
    p.add_argument("index", help="index file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--writable", action="store_true", help="allow /add, /upsert and /delete (default read-only)")
    p.add_argument("--api-key", help="require this key on every API request (default: $LATEINT_API_KEY, or none)")
    p.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask for (default 1000)")
    p.add_argument("--max-body", type=int, default=8 * 1024 * 1024, help="largest request body, bytes (8 MiB)")

    p = sub.add_parser("models", help="list, describe, verify or export models")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = actions.add_parser("list", help="every installed model")
    m.add_argument("--json", action="store_true", help="print JSON")
    for action, purpose in (("info", "describe"), ("verify", "check the sha256 of")):
        m = actions.add_parser(action, help=f"{purpose} one model")
        m.add_argument("name", nargs="?", help="model name or folder (default: the default model)")
        if action == "info":
            m.add_argument("--json", action="store_true", help="print JSON")
    _export_parser(actions)

    from .cli_shard import add_parser as add_shard_parser

    add_shard_parser(sub, _query_options, _where_options)

    p = sub.add_parser("demo", help="index the bundled sample corpus and run example queries")
    p.add_argument("--index", help="where to write the demo index (default: a temporary file)")
    p.add_argument("--query", action="append", help="query to run (repeatable; default: three examples)")
    p.add_argument("-k", type=int, default=3, help="results per query (default 3)")
    return parser


def _query_options(parser: argparse.ArgumentParser, modes: Sequence[str]) -> None:
    """The query, k, output format and scoring options of a search command."""
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    _output_options(parser)
    parser.add_argument("--mode", choices=modes, default="maxsim", help="scoring (default maxsim)")
    parser.add_argument("--fusion", choices=("score", "rrf"), default="score", help="hybrid fusion (default score)")
    parser.add_argument("--exact", action="store_true", help="exhaustive MaxSim instead of PLAID pruning")


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array of hits")
    parser.add_argument("--jsonl", action="store_true", help="print one JSON object per hit and line (NDJSON)")
    parser.add_argument(
        "--fields",
        help="hit fields for --json/--jsonl, comma-separated (default rank,id,score,meta,snippet; also "
        "marked_snippet, highlights, passage, text)",
    )
    parser.add_argument("--full-text", action="store_true", help="add each hit's whole text to --json/--jsonl")


def _where_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY<OP>VALUE",
        help="metadata filter, repeatable (AND): OP is = != >= <= > < or ^= (starts with); VALUE is JSON or text",
    )
    parser.add_argument(
        "--where-json", help='full filter as JSON, e.g. \'{"$or": [{"lang": "en"}, {"year": {"gte": 2024}}]}\''
    )


_WHERE_OPS = (("^=", "prefix"), ("!=", "ne"), (">=", "gte"), ("<=", "lte"), ("=", "eq"), (">", "gt"), ("<", "lt"))


def parse_where_args(clauses: list[str], as_json: str | None) -> dict[str, Any] | None:
    """A ``where`` mapping from --where KEY<OP>VALUE clauses and/or --where-json."""
    from .filters import where_from_json

    where: dict[str, Any] = where_from_json(as_json, "--where-json") or {}
    for clause in clauses:
        for symbol, op in _WHERE_OPS:
            key, found, raw = clause.partition(symbol)
            if found and key.strip():
                try:
                    value = raw if op == "prefix" else json.loads(raw)
                except json.JSONDecodeError:
                    value = raw
                spec = where.setdefault(key.strip(), {})
                if not isinstance(spec, dict):
                    raise LateIntError(f"--where {clause!r}: {key.strip()!r} is already filtered by equality")
                spec[op] = value
                break
        else:
            raise LateIntError(f"--where {clause!r}: expected KEY<OP>VALUE with OP one of = != >= <= > < ^=")
    return where or None


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not when created)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:  # logging must never break the command
            self.handleError(record)


class _CliLogFormat(logging.Formatter):
    """``lateint: <message>`` for progress notes, ``lateint: warning: <message>`` for warnings."""

    def format(self, record: logging.LogRecord) -> str:
        kind = "warning: " if record.levelno >= logging.WARNING else ""
        return f"lateint: {kind}{record.getMessage()}"


def _log_warnings_to_stderr() -> None:
    """Library notes (an automatic build starting, a migration) and warnings (a skipped
    compaction, a writer waiting for another) as one ``lateint: ...`` line each on stderr,
    whether or not it is a terminal."""
    logger = logging.getLogger("lateint_lite")
    if not any(getattr(h, "lateint_cli", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setLevel(logging.INFO)
        handler.setFormatter(_CliLogFormat())
        handler.lateint_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


def _lossy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lossy",
        action="store_true",
        help="allow re-encoding documents added as precomputed vectors from their stored codes "
        "(each such rebuild adds quantization error)",
    )


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="bundled model name or model folder (default: minilm-l6-v2)")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run the CLI; returns the exit status."""
    out = stdout or sys.stdout
    args = build_parser().parse_args(argv)
    _log_warnings_to_stderr()
    try:
        return int(COMMANDS[args.command](args, out) or 0)
    except LateIntError as exc:
        print(f"lateint: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lateint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # anything else still ends in one line (docs/errors.md)
        mapped = translate(exc, "lateint")
        print(f"lateint: error: {mapped}", file=sys.stderr)
        return mapped.exit_code if isinstance(mapped, LateIntError) else 1


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    if Path(args.index).exists() and Path(args.index).stat().st_size > 0:
        raise LateIntError(f"{args.index}: already exists")
    skiplist: str | list[str] | None = args.skiplist
    if skiplist not in (None, "punctuation", "none"):
        skiplist = [t for t in str(skiplist).split(",") if t]
    with open_index(
        args.index,
        create=True,
        model=args.model,
        skiplist=skiplist,
        passage_length=args.passage_length,
        passage_overlap=args.passage_overlap,
        max_passages=args.max_passages,
        embed_model=args.embed_model,
    ) as idx:
        print(f"created {idx.path} (model {idx.config.model.name}, dim {idx.dim})", file=out)
    return 0


def cmd_add(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index
    from .sources import collect_documents

    collected = collect_documents(args.inputs, args.glob, args.encoding)
    for skipped in collected.skipped:
        print(f"lateint: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    with open_index(  # an existing index refuses --max-passages (chosen at creation only)
        args.index, create=True, model=args.model, auto_build=not args.no_build, max_passages=args.max_passages
    ) as idx:
        docs, unchanged = collected.documents, 0
        if args.skip_unchanged:
            docs = [d for d in collected.documents if not _unchanged(idx, d)]
            unchanged = len(collected.documents) - len(docs)
        if not docs and not unchanged:
            detail = f" ({collected.skip_summary()})" if collected.skipped else ""
            raise LateIntError(f"no documents found in {' '.join(args.inputs)}{detail}")
        replace = args.command == "upsert" or args.skip_unchanged
        write = idx.upsert if replace else idx.add
        split_before = idx.info().split_documents
        written = write(docs, progress=_progress_wanted(args), batch_size=args.batch_size) if docs else []
        verb = "upserted" if replace else "added"
        split = idx.info().split_documents - split_before
        notes = [
            n
            for n in (
                f"{split} split into passages" if split > 0 else "",
                collected.skip_summary(),
                f"{unchanged} unchanged" if unchanged else "",
            )
            if n
        ]
        extra = f"; {'; '.join(notes)}" if notes else ""
        print(f"{verb} {_count(len(written), 'document')} in {idx.path} ({len(idx)} in total){extra}", file=out)
    return 0


def _unchanged(idx: Any, doc: dict[str, Any]) -> bool:
    """Whether a file document's content hash equals the stored document's."""
    from .errors import DocumentNotFoundError

    digest = doc.get("meta", {}).get("sha256")
    if digest is None:
        return False
    try:
        return idx.get(doc["id"]).meta.get("sha256") == digest
    except DocumentNotFoundError:
        return False


def cmd_rerank(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    _check_output_options(args)

    with open_index(args.index, readonly=True) as idx, _search_kernels(idx.n_tokens):
        hits = idx.rerank(displayable(args.query), args.ids, k=args.k)
    _print_hits(hits, args, out)
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index, readonly=True) as idx:
        target = idx.export(args.target, with_model=args.with_model)
    print(f"wrote {target} ({Path(target).stat().st_size} bytes)", file=out)
    return 0


def cmd_optimize(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index) as idx:
        report = idx.optimize(
            retrain=args.retrain, lossy=args.lossy, progress=not args.no_progress and sys.stderr.isatty()
        )
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        before, after = report.file_bytes_before, report.file_bytes_after
        print(f"{args.index}: {report.action}; file {before} -> {after} bytes", file=out)
    return 0


def _count(n: int, noun: str) -> str:
    """'1 document', '2 documents'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


#: Seconds a search may take before the CLI says why (the first run compiles the kernels:
#: 20 s for a search of a built SciFact index on 2 cores, 1.7 s once they are cached).
SLOW_START_NOTICE_S = 3.0


@contextlib.contextmanager
def _slow_start_notice() -> Iterator[None]:
    """Print one stderr line when the body is still running after ``SLOW_START_NOTICE_S``."""
    timer = threading.Timer(
        SLOW_START_NOTICE_S,
        lambda: print(
            "lateint: loading the index and compiling the search kernels (the first run after "
            "installing takes up to a minute; later runs reuse the compiled code)",
            file=sys.stderr,
            flush=True,
        ),
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


#: A search command on an index of at most this many stored tokens runs the numpy read kernels:
#: one query there costs less than numba's start-up (~0.9 s per process) and far less than its
#: first compile (~10 s); measured in docs/benchmarks.md "Cold start", docs/ARCHITECTURE.md.
NUMPY_TIER_MAX_TOKENS = 10_000_000


@contextlib.contextmanager
def _search_kernels(n_tokens: int) -> Iterator[None]:
    """The read kernels for one search command over ``n_tokens`` stored tokens: the numpy tier
    for a small index, else numba (with the slow-start notice); ``$LATEINT_KERNELS`` decides
    when it is set."""
    from . import kernels

    if "LATEINT_KERNELS" not in os.environ and n_tokens <= NUMPY_TIER_MAX_TOKENS:
        with kernels.tier_in_use("numpy"):
            yield
        return
    with _slow_start_notice():
        yield


def _load_while_encoder_loads(idx: Any) -> None:
    """Load the resident search data while another thread loads the model: creating the ONNX
    session releases the GIL, so the two overlap (0.36-0.40 s instead of 0.51 s on SciFact).
    A model that fails to load fails again, with its error, when the search asks for it."""

    def load_model() -> None:
        with contextlib.suppress(Exception):
            idx.encoder  # noqa: B018 - loads and caches the encoder

    loader = threading.Thread(target=load_model, name="lateint-model-load", daemon=True)
    loader.start()
    try:
        idx.warm_up()
    finally:
        loader.join()


def cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    _check_output_options(args)

    with open_index(args.index, readonly=True) as idx, _search_kernels(idx.n_tokens):
        if args.mode != "bm25":
            _load_while_encoder_loads(idx)
        hits = idx.search(
            displayable(args.query),
            k=args.k,
            mode=args.mode,
            exact=args.exact,
            ncells=args.ncells,
            threshold=args.threshold,
            ndocs=args.ndocs,
            fusion=args.fusion,
            where=parse_where_args(args.where, args.where_json),
        )
    _print_hits(hits, args, out)
    return 0


def _check_output_options(args: argparse.Namespace) -> None:
    """--fields and --full-text shape JSON records: without --json/--jsonl they would be ignored."""
    if (args.fields or args.full_text) and not (args.json or args.jsonl):
        raise LateIntError("--fields and --full-text apply to --json or --jsonl output")


def _print_hits(hits: list[Any], args: argparse.Namespace, out: TextIO) -> None:
    """Tab-separated lines (rank, score, id, snippet with matches marked), or JSON / NDJSON records."""
    if args.json or args.jsonl:
        from .results import DEFAULT_FIELDS, hit_record, parse_fields

        names = args.fields.split(",") if args.fields else list(DEFAULT_FIELDS)
        fields = parse_fields([*names, "text"] if args.full_text else names)
        records = [hit_record(hit, fields) for hit in hits]
        if args.jsonl:
            for record in records:
                print(json.dumps(record, ensure_ascii=False), file=out)
        else:
            json.dump(records, out, ensure_ascii=False, indent=2)
            out.write("\n")
        return
    before, after = ("\x1b[1m", "\x1b[22m") if out.isatty() else ("**", "**")
    for hit in hits:
        print(f"{hit.rank}\t{hit.score:.4f}\t{hit.id}\t{hit.marked_snippet(before, after)}", file=out)


def cmd_build(args: argparse.Namespace, out: TextIO) -> int:
    from .config import BuildOptions
    from .index import open as open_index

    options = BuildOptions(
        nbits=args.nbits,
        residual_dim=AUTO if args.residual_dim is None else (args.residual_dim or None),
        n_centroids=args.centroids,
        pool_factor=args.pool_factor,
        seed=args.seed,
    )
    with open_index(args.index) as idx:
        report = idx.build(options, lossy=args.lossy, progress=not args.no_progress and sys.stderr.isatty())
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        print(
            f"built {args.index}: {report.documents} documents, {report.tokens} tokens, "
            f"{report.n_centroids} centroids, {report.bytes_per_token} B/token "
            f"({report.train_seconds} s training, {report.encode_seconds} s encoding)",
            file=out,
        )
    return 0


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from .evaluation import MODES, evaluate, format_table, load_beir, to_json
    from .index import open as open_index
    from .sources import read_documents

    dataset = load_beir(args.dataset)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise LateIntError(f"unknown mode {unknown[0] if unknown else ''!r}; choose from {', '.join(MODES)}")
    target = Path(args.index or f"{dataset.name}.lateint")
    progress = not args.no_progress and sys.stderr.isatty()
    built_s = None
    with open_index(target, create=True) as idx:
        docs = list(read_documents(str(dataset.corpus)))
        if len(idx) == 0:
            print(f"building {target} from {dataset.corpus} ({len(docs)} documents)", file=sys.stderr)
            started = time.perf_counter()
            idx.add(docs, progress=progress)
            built_s = round(time.perf_counter() - started, 1)
        elif len(idx) != len(docs):
            raise LateIntError(
                f"{target} holds {len(idx)} documents but the corpus has {len(docs)}; use another --index"
            )
        results = evaluate(idx.search, dataset, modes, progress=progress, limit=args.queries)
        info = idx.info().to_dict()
    if args.json:
        extra = {"index": str(target), "build_seconds": built_s, "documents": info["documents"], "codec": info["codec"]}
        print(to_json(dataset, results, extra), file=out)
    else:
        print(format_table(dataset, results), file=out)
        if built_s is not None:
            print(f"(index built in {built_s} s: {target})", file=out)
    return 0


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from .index import migrate

    steps = migrate(args.index)
    if steps:
        print(f"{args.index}: migrated from schema {steps[0]} to the current schema", file=out)
    else:
        print(f"{args.index}: already at the current schema", file=out)
    return 0


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index, readonly=True) as idx:
        doc = idx.get(args.id)
    if args.json:
        json.dump({"id": doc.id, "text": doc.text, "meta": doc.meta, "n_tokens": doc.n_tokens}, out, ensure_ascii=False)
        out.write("\n")
    else:
        print(doc.text, file=out)
    return 0


def cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index) as idx:
        removed = idx.delete(args.ids, missing_ok=args.missing_ok)
    print(f"deleted {_count(removed, 'document')}", file=out)
    return 0


def cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index, readonly=True) as idx:
        info = idx.info().to_dict()
    if args.json:
        json.dump(info, out, indent=2)
        out.write("\n")
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key.ljust(width)}  {value}", file=out)
    return 0


def _export_parser(actions: Any) -> None:
    m = actions.add_parser(
        "export",
        help="export a local checkpoint folder to ONNX + manifest (needs the export extra; never downloads)",
        description="Export a checkpoint folder (PyLate / sentence-transformers, Stanford ColBERT, or plain "
        "Hugging Face layout; safetensors weights) into a new lateint-lite model folder.",
    )
    m.add_argument("source", help="checkpoint folder")
    m.add_argument("dest", help="new model folder to write")
    m.add_argument("--name", help="model name in the manifest (default: DEST's folder name)")
    m.add_argument("--projection-file", help="safetensors with a linear projection, for a plain checkpoint")
    m.add_argument("--no-quantize", action="store_true", help="keep fp32 weights (default: dynamic int8)")
    m.add_argument("--license", help="licence to record (default: the model card's, else unknown)")
    m.add_argument("--query-marker", help="token inserted after the first query token (e.g. [unused0])")
    m.add_argument("--document-marker", help="token inserted after the first document token (e.g. [unused1])")
    m.add_argument("--query-length", type=int, help="query length in tokens (default: the checkpoint's)")
    m.add_argument("--document-length", type=int, help="document window in tokens (default: the checkpoint's)")
    m.add_argument("--expand-to", type=int, help="pad queries with the mask token to this many tokens")
    m.add_argument("--json", action="store_true", help="print the report as JSON")


def cmd_models_export(args: argparse.Namespace, out: TextIO) -> int:
    from .model_export import export_checkpoint

    for flag in ("query_length", "document_length", "expand_to"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise InvalidInputError(f"--{flag.replace('_', '-')} must be positive")
    report = export_checkpoint(
        args.source,
        args.dest,
        name=args.name,
        projection_file=args.projection_file,
        quantize=not args.no_quantize,
        license=args.license,
        query_marker=args.query_marker,
        document_marker=args.document_marker,
        query_length=args.query_length,
        document_length=args.document_length,
        expand_to=args.expand_to,
    )
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
        return 0
    kind = "int8" if report.quantized else "fp32"
    print(
        f"{report.folder}: {report.layout} layout, dim {report.dim}, {kind}; "
        f"min token cosine vs PyTorch {report.min_token_cosine:.5f}",
        file=out,
    )
    for note in report.notes:
        print(f"note: {note}", file=out)
    return 0


def cmd_models(args: argparse.Namespace, out: TextIO) -> int:
    from .manifest import describe_model, installed_models, load_manifest

    if args.action == "export":
        return cmd_models_export(args, out)
    if args.action == "list":
        rows = []
        for name, (folder, origin) in installed_models().items():
            manifest = load_manifest(folder)
            rows.append(describe_model(manifest, origin) | {"name": name})
        if args.json:
            json.dump(rows, out, indent=2)
            out.write("\n")
        for row in [] if args.json else rows:
            size = sum(f["bytes"] or 0 for f in row["files"].values()) / 2**20
            print(f"{row['name']}\tdim {row['dim']}\t{size:.1f} MiB\t{row['license']}\t{row['origin']}", file=out)
        return 0
    manifest = load_manifest(args.name)
    if args.action == "verify":
        manifest.verify_files()
        print(f"{manifest.name}: model and tokenizer files match their sha256", file=out)
        return 0
    known = {folder.resolve(): origin for folder, origin in installed_models().values()}
    report = describe_model(manifest, known.get(manifest.root.resolve(), "folder"))
    if args.json:
        json.dump(report, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
            print(f"{key.ljust(width)}  {shown}", file=out)
    return 0


def cmd_ids(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    if args.offset < 0 or (args.limit is not None and args.limit < 0):
        raise LateIntError("--offset and --limit must not be negative")
    with open_index(args.index, readonly=True) as idx:
        ids = idx.ids()
    stop = None if args.limit is None else args.offset + args.limit
    for doc_id in ids[args.offset : stop]:
        print(doc_id, file=out)
    return 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index

    with open_index(args.index, readonly=args.readonly) as idx:
        report = idx.check()
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        for check in report.checks:
            print(f"checked  {check}", file=out)
        for reason in report.skipped:
            print(f"skipped  {reason}", file=out)
        for problem in report.problems:
            print(f"PROBLEM  {problem}", file=out)
    if report.ok:
        return 0
    print(f"lateint: error: {args.index}: {len(report.problems)} problem(s) found", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from .requests import positive_int
    from .server import ServerLimits, serve

    limits = ServerLimits(
        max_body_bytes=positive_int(args.max_body, "--max-body"), max_k=positive_int(args.max_k, "--max-k")
    )

    def announce(url: str) -> None:
        mode = "read-write" if args.writable else "read-only"
        print(f"serving {args.index} ({mode}) at {url}  (Ctrl-C stops)", file=out, flush=True)

    try:
        serve(
            args.index,
            host=args.host,
            port=args.port,
            writable=args.writable,
            api_key=args.api_key,
            limits=limits,
            on_ready=announce,
        )
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: uvicorn has finished its requests
        print("lateint: server stopped", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .index import open as open_index
    from .sources import read_documents

    sample = resources.files("lateint_lite") / "data" / "sample.jsonl"
    with resources.as_file(sample) as sample_path, tempfile.TemporaryDirectory() as tmp:
        target = Path(args.index) if args.index else Path(tmp) / "demo.lateint"
        if target.exists():
            raise LateIntError(f"{target}: already exists; pick another --index path")
        docs = list(read_documents(str(sample_path)))
        with open_index(target, create=True) as idx:
            idx.add(docs, progress=sys.stderr.isatty())
            info = idx.info().to_dict()
            print(
                f"indexed {info['documents']} documents ({info['tokens']} tokens, model {info['model']}) "
                f"into {target if args.index else 'a temporary index'}",
                file=out,
            )
            with _search_kernels(idx.n_tokens):
                for query in args.query or DEMO_QUERIES:
                    print(f"\nquery: {query}", file=out)
                    for hit in idx.search(query, k=args.k):
                        print(f"  {hit.rank}. {hit.score:7.3f}  {hit.id:<9} {preview(hit.text, 70)}", file=out)
    return 0


def cmd_shard(args: argparse.Namespace, out: TextIO) -> int:
    from .cli_shard import cmd_shard as run_shard_action

    return run_shard_action(args, out)


def _progress_wanted(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


COMMANDS: dict[str, Any] = {
    "init": cmd_init,
    "add": cmd_add,
    "upsert": cmd_add,
    "rerank": cmd_rerank,
    "optimize": cmd_optimize,
    "export": cmd_export,
    "build": cmd_build,
    "search": cmd_search,
    "migrate": cmd_migrate,
    "get": cmd_get,
    "delete": cmd_delete,
    "info": cmd_info,
    "check": cmd_check,
    "ids": cmd_ids,
    "eval": cmd_eval,
    "serve": cmd_serve,
    "models": cmd_models,
    "demo": cmd_demo,
    "shard": cmd_shard,
}


if __name__ == "__main__":
    raise SystemExit(main())
