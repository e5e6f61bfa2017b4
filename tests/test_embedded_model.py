"""The model inside the index file (issue 15, item 5): embedded, checked, used where the model is
not installed; a file with neither gives a clear error. Uses the real default model."""

from __future__ import annotations

import shutil

import pytest

import lateint_lite as li
from lateint_lite import manifest as manifest_module
from lateint_lite.errors import CorruptIndexError, InvalidInputError, ModelError

pytestmark = pytest.mark.model

DOCS = [
    {"id": "tides", "text": "The Moon's gravity pulls the oceans and causes the tides."},
    {"id": "bread", "text": "Bread rises because yeast releases carbon dioxide gas."},
    {"id": "stars", "text": "A massive star collapses into a black hole at the end of its life."},
]


@pytest.fixture(autouse=True)
def model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATEINT_MODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def model_folder(tmp_path):
    """A copy of the default model in a folder of its own (removed by the tests that need that)."""
    folder = tmp_path / "my-model"
    shutil.copytree(manifest_module.resolve_model_dir(None), folder)
    return folder


def _no_installed_models(monkeypatch, tmp_path):
    """As on a machine where no model is installed: no bundled models, no entry points."""
    empty = tmp_path / "no-models"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr(manifest_module, "bundled_models_dir", lambda: empty)
    monkeypatch.setattr(manifest_module, "installed_models", lambda: {})


def test_an_index_built_from_a_folder_carries_its_model(tmp_path, model_folder):
    path = tmp_path / "idx.lateint"
    with li.open(path, create=True, model=model_folder) as idx:
        idx.add(DOCS)
        info = idx.info()
        assert info.model_embedded_bytes > 20_000_000 and idx.check().ok
    shutil.rmtree(model_folder)  # the folder is gone: the file does not need it
    with li.open(path, readonly=True) as idx:
        assert idx.search("why are there tides?", k=1)[0].id == "tides"


def test_without_the_model_installed_or_embedded_the_error_names_it(tmp_path, model_folder):
    path = tmp_path / "idx.lateint"
    with li.open(path, create=True, model=model_folder, embed_model=False) as idx:
        idx.add(DOCS)
        assert idx.info().model_embedded_bytes == 0
    shutil.rmtree(model_folder)
    with li.open(path, readonly=True) as idx, pytest.raises(ModelError, match=r"minilm-l6-v2.*--with-model"):
        idx.search("tides", k=1)


def test_an_export_with_the_model_opens_where_no_model_is_installed(tmp_path, monkeypatch):
    source = tmp_path / "named.lateint"
    with li.open(source, create=True) as idx:  # the bundled default, by name: not embedded
        idx.add(DOCS)
        assert idx.info().model_embedded_bytes == 0
        want = [h.id for h in idx.search("what happens when a star dies?", k=3)]
        shipped = idx.export(tmp_path / "ship" / "with-model.lateint", with_model=True)
        plain = idx.export(tmp_path / "ship" / "plain.lateint")
    _no_installed_models(monkeypatch, tmp_path)
    with li.open(shipped, readonly=True) as idx:
        assert idx.check().ok and idx.info().model_embedded_bytes > 0
        assert [h.id for h in idx.search("what happens when a star dies?", k=3)] == want
    with li.open(plain, readonly=True) as idx, pytest.raises(ModelError, match="neither installed here nor embedded"):
        idx.search("stars", k=1)


def test_a_damaged_embedded_model_is_reported_and_never_loaded(tmp_path, monkeypatch, model_folder):
    path = tmp_path / "idx.lateint"
    with li.open(path, create=True, model=model_folder) as idx:
        idx.add(DOCS)
        store = idx._store
        with store.write():
            store._conn.execute("UPDATE model_files SET data = zeroblob(length(data)) WHERE name = 'tokenizer.json'")
        assert any("tokenizer.json" in p for p in idx.check().problems)
    shutil.rmtree(model_folder)
    with li.open(path, readonly=True) as idx, pytest.raises(CorruptIndexError, match="sha256"):
        idx.search("tides", k=1)


def test_embed_model_is_chosen_at_creation_and_only_for_onnx_models(tmp_path, fake_encoder):
    with pytest.raises(InvalidInputError, match="custom encoder"):
        li.open(tmp_path / "a.lateint", create=True, encoder=fake_encoder, embed_model=True)
    assert not (tmp_path / "a.lateint").exists()
    with li.open(tmp_path / "b.lateint", create=True, encoder=fake_encoder) as idx:
        idx.add(DOCS)
        with pytest.raises(InvalidInputError, match="custom encoder"):
            idx.export(tmp_path / "b-copy.lateint", with_model=True)
    assert not (tmp_path / "b-copy.lateint").exists()
    with pytest.raises(InvalidInputError, match="created"):
        li.open(tmp_path / "b.lateint", encoder=fake_encoder, embed_model=True)


def test_cli_init_embeds_and_export_carries_the_model(tmp_path, capsys):
    from lateint_lite.cli import main

    index = str(tmp_path / "cli.lateint")
    assert main(["init", index, "--embed-model"]) == 0
    assert main(["info", index, "--json"]) == 0
    assert '"model_embedded_bytes": 0' not in capsys.readouterr().out
    plain = str(tmp_path / "plain.lateint")
    assert main(["init", plain]) == 0
    assert main(["export", plain, str(tmp_path / "out" / "x.lateint"), "--with-model"]) == 0
    with li.open(tmp_path / "out" / "x.lateint", readonly=True) as idx:
        assert idx.info().model_embedded_bytes > 0
