"""Real read-only media and a real full file system (issue 13): a small tmpfs mounted for the
test, where the machine allows it (root with mount rights); skipped with the reason elsewhere."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.cli import main
from lateint_lite.errors import DiskFullError, ReadOnlyError

DIM = 32


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode(errors='replace').strip() or 'not permitted'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _docs(start: int, n: int) -> list[dict]:
    rng = np.random.default_rng(start)
    vectors = rng.standard_normal((n, 40, DIM)).astype(np.float32)
    texts = [f"tide document {start + i} " * 20 for i in range(n)]
    return [{"id": f"d{start + i}", "text": text, "vectors": vectors[i]} for i, text in enumerate(texts)]


def test_an_index_on_read_only_media_searches_and_refuses_writes(tmp_path, fake_encoder, capsys):
    source = tmp_path / "source.lateint"
    with li.open(source, create=True, encoder=fake_encoder) as idx:
        idx.add(_docs(0, 60))
        idx.export(tmp_path / "ship.lateint")
    with tmpfs(tmp_path / "media", "20m") as media:
        shutil.copy(tmp_path / "ship.lateint", media / "ship.lateint")
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        shipped = media / "ship.lateint"
        with li.open(shipped, encoder=fake_encoder, readonly=True) as idx:
            assert len(idx.search("tide", k=5)) == 5
            assert idx.check().ok
        with pytest.raises(ReadOnlyError) as caught, li.open(shipped, encoder=fake_encoder) as idx:
            idx.add(_docs(100, 1))
        assert caught.value.__cause__ is not None
        assert main(["info", str(shipped)]) == 0  # the CLI reads it too (this index's encoder is a test fake)
        assert main(["check", "--readonly", str(shipped)]) == 0
        capsys.readouterr()
        status = main(["delete", str(shipped), "d1"])
        err = capsys.readouterr().err
        assert status == ReadOnlyError.exit_code and err.startswith("lateint: error:") and err.count("\n") == 1


def test_a_full_file_system_fails_the_write_and_keeps_the_index(tmp_path, fake_encoder):
    with tmpfs(tmp_path / "small", "3m") as small:
        path = small / "full.lateint"
        written = 0
        with li.open(path, create=True, encoder=fake_encoder, auto_build=False) as idx:
            with pytest.raises(DiskFullError):
                for start in range(0, 100_000, 50):
                    idx.add(_docs(start, 50))
                    written += 50
            assert len(idx) == written  # every committed add is there, the failed one is not
            assert idx.check().ok
            try:  # WAL needs room even to delete: either outcome, nothing half done
                idx.delete([f"d{i}" for i in range(25)])
                removed = 25
            except DiskFullError:
                removed = 0
            assert len(idx) == written - removed
        with li.open(path, encoder=fake_encoder, readonly=True) as idx:
            assert len(idx) == written - removed and idx.search("tide", k=3)
