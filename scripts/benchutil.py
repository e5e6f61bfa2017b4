"""Helpers shared by the benchmark scripts: machine facts, timing, markdown output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def machine() -> str:
    """One line: CPU model, cores, memory, OS, Python, numpy/numba versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        match = re.search(r"model name\s*:\s*(.+)", text)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    import numba

    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
    )


def command_line() -> str:
    return "OPENBLAS_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv)


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    arr = np.asarray(samples_s) * 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def write_section(path: Path | None, title: str, body: str) -> None:
    """Print a dated markdown section and, with ``path``, replace/append it there."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    section = f"## {title}\n\n_{stamp}; {machine()}_\n\n`{command_line()}`\n\n{body.strip()}\n"
    print(section)
    if path is None:
        return
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)


def run_in_checkout(checkout: Path, code: str, args: list[str], cwd: Path) -> dict:
    """Run ``code`` (``python -c``, printing a JSON object with ``module`` = ``lateint_lite.__file__``
    as its last line) with ``checkout``'s lateint_lite, in ``cwd`` (outside any checkout, so
    neither ``''`` on sys.path nor an editable install picks another copy); its JSON object."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-c", code, *args]
    result = subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, text=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    if not str(row["module"]).startswith(str(checkout)):
        raise SystemExit(f"{checkout} ran lateint_lite from {row['module']}")
    return dict(row)
