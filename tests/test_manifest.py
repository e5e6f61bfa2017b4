"""Manifest parsing, validation and file checksums."""

from __future__ import annotations

import json
import shutil

import pytest

from lateint_lite.errors import ModelError
from lateint_lite.manifest import DEFAULT_MODEL, bundled_models_dir, load_manifest, parse_manifest, resolve_model_dir


def test_default_manifest_loads_and_verifies():
    manifest = load_manifest()
    assert manifest.name == DEFAULT_MODEL
    assert manifest.dim == 384
    assert manifest.document.max_length == 256
    assert manifest.query.max_length == 64
    assert manifest.max_batch_size == 1
    assert manifest.license == "Apache-2.0"
    manifest.verify_files()


def test_model_can_be_named_or_given_as_folder():
    folder = bundled_models_dir() / DEFAULT_MODEL
    assert resolve_model_dir(DEFAULT_MODEL) == folder
    assert resolve_model_dir(folder) == folder
    with pytest.raises(ModelError, match="no model"):
        resolve_model_dir("no-such-model")


def _raw():
    return json.loads((bundled_models_dir() / DEFAULT_MODEL / "manifest.json").read_text())


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda m: m.pop("name"), "name"),
        (lambda m: m.update(dim=0), "dim"),
        (lambda m: m.update(dim="384"), "dim"),
        (lambda m: m["files"].pop("model"), "files.model"),
        (lambda m: m["files"]["model"].update(path="../../etc/passwd"), "inside the model folder"),
        (lambda m: m["files"]["model"].update(sha256="abc"), "64 hex"),
        (lambda m: m.update(format_version=99), "format_version"),
        (lambda m: m["query"].update(expand_to=100), "expand_to"),
        (lambda m: m["document"].update(skiplist="abc"), "skiplist"),
        (lambda m: m.update(max_batch_size=-1), "max_batch_size"),
    ],
)
def test_invalid_manifests_are_rejected(tmp_path, mutate, message):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ModelError, match=message):
        parse_manifest(raw, tmp_path)


def test_checksum_mismatch_is_detected(tmp_path):
    source = bundled_models_dir() / DEFAULT_MODEL
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    (copy / "tokenizer.json").write_text((copy / "tokenizer.json").read_text() + " ")
    with pytest.raises(ModelError, match="sha256"):
        load_manifest(copy).verify_files()


def test_unreadable_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read manifest"):
        load_manifest(tmp_path)
