"""`lateint models list | info | verify` and model discovery by name: bundled folders and models
that installed packages offer through the ``lateint_lite.models`` entry point group."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import lateint_lite as li
from lateint_lite import manifest as manifest_module
from lateint_lite.cli import main
from lateint_lite.manifest import ENTRY_POINT_GROUP, bundled_models_dir

DEFAULT = "minilm-l6-v2"


@pytest.fixture
def packaged_copy(tmp_path, monkeypatch):
    """A copy of the default model offered by a (pretend) installed package as "copied-model"."""
    folder = tmp_path / "copied"
    shutil.copytree(bundled_models_dir() / DEFAULT, folder)
    import importlib.metadata

    point = EntryPoint(name="copied-model", value="pretend_pkg:MODEL_DIR", group=ENTRY_POINT_GROUP)
    real_load, real_entry_points = EntryPoint.load, importlib.metadata.entry_points
    monkeypatch.setattr(EntryPoint, "load", lambda self: str(folder) if self is point else real_load(self))

    def entry_points(**selection):
        return [point] if selection.get("group") == ENTRY_POINT_GROUP else real_entry_points(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return folder


def test_models_list_shows_the_bundled_model(capsys):
    assert main(["models", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[0].split("\t")
    assert line[0] == DEFAULT and line[1] == "dim 384" and line[3] == "Apache-2.0" and line[4] == "bundled"
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["files"]["model"]["bytes"] > 1_000_000 and len(rows[0]["files"]["model"]["sha256"]) == 64


def test_models_info_and_verify(capsys):
    assert main(["models", "info", DEFAULT, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["name"], info["dim"], info["max_positions"], info["origin"]) == (DEFAULT, 384, 512, "bundled")
    assert main(["models", "verify"]) == 0  # the default model
    assert "match their sha256" in capsys.readouterr().out


def test_a_model_offered_by_an_installed_package_is_found_by_name(packaged_copy, capsys, tmp_path):
    assert manifest_module.resolve_model_dir("copied-model") == packaged_copy
    assert main(["models", "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [DEFAULT, "copied-model"]
    with li.open(tmp_path / "pkg.lateint", create=True, model="copied-model") as idx:
        idx.add([{"id": "a", "text": "tides and the moon"}])
        assert idx.search("moon", k=1)[0].id == "a"


def test_verify_names_a_tampered_file_in_one_line(packaged_copy, capsys):
    tokenizer = packaged_copy / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"[UNK]"', b'"[UNX]"', 1))
    assert main(["models", "verify", "copied-model"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lateint: error: ") and "tokenizer.json: sha256" in err and err.count("\n") == 1


def test_an_unknown_model_is_one_line_naming_the_list_command(capsys):
    assert main(["models", "info", "no-such-model"]) != 0
    err = capsys.readouterr().err
    assert "lateint models list" in err and err.count("\n") == 1


COLBERT = Path(__file__).resolve().parent.parent / "models" / "answerai-colbert-small-v1"


@pytest.mark.model
def test_the_colbert_model_package_indexes_and_searches_the_sample(tmp_path):
    """The second model, from its folder (an installed package offers the same folder by name)."""
    folder = COLBERT / "lateint_model_answerai_colbert_small" / "model"
    if not folder.is_dir():
        pytest.skip("the ColBERT model package is not in this checkout (an sdist carries only the default)")
    from lateint_lite.sources import read_documents

    sample = Path(li.__file__).resolve().parent / "data" / "sample.jsonl"
    with li.open(tmp_path / "colbert.lateint", create=True, model=str(folder)) as idx:
        idx.add(list(read_documents(str(sample))))
        assert idx.config.model.name == "answerai-colbert-small-v1" and idx.dim == 384
        top = idx.search("why do my eyes water when I chop vegetables?", k=3)
        assert top[0].id == "cook-3" and top[0].highlights
        assert idx.search("how does a database stay consistent after a crash?", k=1)[0].id == "tech-2"
