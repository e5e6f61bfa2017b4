"""The compiled-kernel cache works when the installed package is on read-only media (issue 14):
numba cannot write next to the modules, so it falls back to the per-user cache directory, and a
second process loads the kernels from there instead of compiling them again.

The package is copied and bind-mounted read-only in a private mount namespace (``unshare``); where
that is not permitted the test skips and says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lateint_lite

PROBE = """
import json, numpy as np
from lateint_lite.kernels import varint
blobs = varint.varint_encode_lists(np.array([0, 2, 3]), np.array([1, 5, 7]))
offsets, values = varint.varint_decode_lists(blobs, 10)
stats = varint._varint_decode_lists.stats
print(json.dumps({"values": values.tolist(), "module": varint.__file__, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _read_only_run(package_root: Path, cache_home: Path) -> subprocess.CompletedProcess[str]:
    script = (
        f"mount --bind {package_root} {package_root} && mount -o remount,ro,bind {package_root} && "
        f"touch {package_root}/probe 2>/dev/null && exit 97; exec {sys.executable} -c '{PROBE}'"
    )
    env = {**os.environ, "PYTHONPATH": str(package_root), "XDG_CACHE_HOME": str(cache_home)}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        env=env,
        cwd=cache_home.parent,  # not the checkout: `python -c` imports from the working directory first
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_kernels_cache_to_the_user_directory_when_the_package_is_read_only(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount the package read-only")
    package_root = tmp_path / "site"
    shutil.copytree(
        Path(lateint_lite.__file__).parent, package_root / "lateint_lite", ignore=shutil.ignore_patterns("__pycache__")
    )
    cache_home = tmp_path / "cache"
    first = _read_only_run(package_root, cache_home)
    if first.returncode != 0 and ("mount" in first.stderr or "unshare" in first.stderr):
        pytest.skip(f"cannot mount read-only here: {first.stderr.strip().splitlines()[-1]}")
    assert first.returncode == 0, first.stderr  # 97: the mount was not read-only after all
    compiled = json.loads(first.stdout)
    assert compiled["module"].startswith(str(package_root))
    assert compiled["values"] == [1, 5, 7] and compiled["hits"] == 0 and compiled["misses"] == 1
    assert not list(package_root.rglob("*.nbi"))  # nothing written next to the modules
    assert list((cache_home / "numba").rglob("*varint*.nbi"))  # the per-user fallback
    again = json.loads(_read_only_run(package_root, cache_home).stdout)
    assert again["values"] == [1, 5, 7] and again["hits"] == 1 and again["misses"] == 0
