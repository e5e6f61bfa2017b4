"""``lateint shard``: build, search and describe sharded indexes (on Ray, or locally with --local).

``build`` runs on Ray (a local cluster unless ``--address`` names one; needs the ``ray`` extra) or,
with ``--local``, in this process. ``search`` reads the shard files in this process unless
``--address`` asks for Ray actors. Every failure is one ``lateint: error:`` line (see cli.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO


def add_parser(
    sub: Any,
    query_options: Callable[[argparse.ArgumentParser, Sequence[str]], None],
    where_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    shard = sub.add_parser("shard", help="sharded indexes: build on Ray, search across shard files")
    actions = shard.add_subparsers(dest="shard_action", metavar="ACTION", required=True)

    p = actions.add_parser("build", help="create a sharded index from documents (Ray; --local without it)")
    p.add_argument("manifest", help="manifest to create (JSON); shard files are written beside it")
    p.add_argument("inputs", nargs="+", metavar="PATH", help="JSON Lines or Parquet files, text files or folders")
    p.add_argument("--shards", type=int, required=True, help="number of shard files")
    p.add_argument("--model", help="bundled model name or model folder (default: minilm-l6-v2)")
    p.add_argument("--address", help="Ray cluster address (default: start a local cluster)")
    p.add_argument("--workers", type=int, default=1, help="encoding actors (default 1)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads per encoding actor (default 1)")
    p.add_argument("--local", action="store_true", help="build in this process, without Ray")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")

    p = actions.add_parser("search", help="print the best documents across every shard")
    p.add_argument("manifest", help="sharded-index manifest")
    query_options(p, ("maxsim", "bm25", "hybrid"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the shards (default 60)")
    p.add_argument("--address", help="search with Ray actors on this cluster ('local' starts one)")
    where_options(p)

    p = actions.add_parser("info", help="print the manifest and every shard's counts")
    p.add_argument("manifest", help="sharded-index manifest")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_shard(args: argparse.Namespace, out: TextIO) -> int:
    return {"build": _build, "search": _search, "info": _info}[args.shard_action](args, out)


def _build(args: argparse.Namespace, out: TextIO) -> int:
    import os
    from dataclasses import asdict

    from .errors import LateIntError

    if os.path.exists(args.manifest):
        raise LateIntError(f"{args.manifest}: already exists (`lateint shard info` describes it)")

    if args.local:
        report = _build_locally(args)
    else:
        from .distributed import build_sharded

        report = asdict(
            build_sharded(
                args.manifest,
                args.inputs,
                shards=args.shards,
                model=args.model,
                workers=args.workers,
                threads=args.threads,
                address=args.address,
            )
        )
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        print(
            f"built {args.manifest}: {report['documents']} documents in {args.shards} shards "
            f"(codec {report['codec_fingerprint'][:12]})",
            file=out,
        )
    return 0


def _build_locally(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import asdict

    from .errors import LateIntError
    from .sharded import open_sharded
    from .sources import collect_documents

    collected = collect_documents(args.inputs, None)
    for skipped in collected.skipped:
        print(f"lateint: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if not collected.documents:
        raise LateIntError(f"no documents found in {' '.join(args.inputs)}")
    with open_sharded(args.manifest, create=True, shards=args.shards, model=args.model) as sharded:
        sharded.add(collected.documents, progress=sys.stderr.isatty())
        return asdict(sharded.build(progress=sys.stderr.isatty()))


def _search(args: argparse.Namespace, out: TextIO) -> int:
    from .cli import _check_output_options, _print_hits, _search_kernels, parse_where_args
    from .sources import displayable

    _check_output_options(args)
    options = {
        "mode": args.mode,
        "exact": args.exact,
        "fusion": args.fusion,
        "where": parse_where_args(args.where, args.where_json),
    }
    query = displayable(args.query)
    if args.address:
        from .distributed import RaySearcher

        with RaySearcher(args.manifest, address=None if args.address == "local" else args.address) as searcher:
            result = searcher.search(query, args.k, timeout=args.timeout, **options)
    else:
        from .sharded import open_sharded

        with (
            open_sharded(args.manifest, readonly=True) as sharded,
            _search_kernels(sum(shard.n_tokens for shard in sharded.shards)),
        ):
            result = sharded.search(query, args.k, timeout=args.timeout, **options)
    for failure in result.failed:
        print(f"lateint: shard {failure.shard} ({failure.path}) failed: {failure.error}", file=sys.stderr)
    _print_hits(result.hits, args, out)
    return 0 if result.complete else 3


def _info(args: argparse.Namespace, out: TextIO) -> int:
    from .sharded import open_sharded

    with open_sharded(args.manifest, readonly=True) as sharded:
        info = sharded.info()
    if args.json:
        json.dump(info, out, indent=2)
        out.write("\n")
        return 0
    fingerprint = (info["codec_fingerprint"] or "not built")[:12]
    print(
        f"{info['path']}: {info['documents']} documents, {info['tokens']} tokens, {info['shards']} shards, "
        f"codec {fingerprint}",
        file=out,
    )
    for number, shard in enumerate(info["shard_info"]):
        print(f"  {number}\t{shard['documents']}\t{shard['file_bytes']}\t{shard['path']}", file=out)
    return 0
