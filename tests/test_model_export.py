"""`lateint models export`: checkpoint layouts read without torch, and the exported tiny checkpoints
(tests/fixtures/exported, made by make_export_fixture.py where torch is installed) reproducing the
token vectors PyTorch computed for them — markers, [MASK] expansion, skiplist and projection."""

from __future__ import annotations

import importlib.util
import json
import string
from pathlib import Path

import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.checkpoints import read_checkpoint, safetensors_header
from lateint_lite.cli import main
from lateint_lite.encoder import OnnxEncoder
from lateint_lite.errors import InvalidInputError, MissingExtraError, ModelError, StorageError
from lateint_lite.manifest import load_manifest
from lateint_lite.model_export import export_checkpoint

EXPORTED = Path(__file__).resolve().parent / "fixtures" / "exported"
TEXTS = json.loads((EXPORTED / "texts.json").read_text())
#: fp32 graph vs PyTorch: float rounding only. int8 (dynamic, per-channel): quantization error,
#: which differs by CPU (measured 0.99973 minimum cosine where the fixture was made).
TOLERANCE = {"tiny-colbert": ("abs", 1e-4), "tiny-pylate": ("cos", 0.995), "tiny-modernbert": ("cos", 0.995)}
HAS_TORCH = importlib.util.find_spec("torch") is not None


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A float32 safetensors file of zeros, written by hand (its format is a JSON header + raw bytes)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))


def hf_folder(path: Path, extra: dict[str, list[int]] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    write_safetensors(path / "model.safetensors", {"embeddings.word_embeddings.weight": [10, 8], **(extra or {})})
    return path


def pylate_folder(path: Path, activation: str = "torch.nn.modules.linear.Identity", bias: bool = False) -> Path:
    hf_folder(path)
    (path / "special_tokens_map.json").write_text(json.dumps({"mask_token": {"content": "<mask>"}}))
    (path / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
            ]
        )
    )
    (path / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "query_prefix": "[Q] ",
                "document_prefix": "[D] ",
                "query_length": 24,
                "document_length": 300,
                "attend_to_expansion_tokens": False,
                "skiplist_words": [".", ","],
            }
        )
    )
    dense = path / "1_Dense"
    dense.mkdir()
    config = {"in_features": 8, "out_features": 4, "bias": bias, "activation_function": activation}
    (dense / "config.json").write_text(json.dumps(config))
    write_safetensors(dense / "model.safetensors", {"linear.weight": [4, 8]} | ({"linear.bias": [4]} if bias else {}))
    return path


# --- the exported fixtures against PyTorch (no torch needed) ---------------------------------


@pytest.mark.parametrize("name", sorted(TOLERANCE))
def test_an_exported_checkpoint_reproduces_the_pytorch_token_vectors(name):
    reference = np.load(EXPORTED / "torch_vectors.npz", allow_pickle=False)
    encoder = OnnxEncoder.from_model(EXPORTED / name, threads=1)
    kind, limit = TOLERANCE[name]
    for role, texts, encode in (
        ("query", TEXTS["queries"], encoder.encode_queries),
        ("document", TEXTS["documents"], encoder.encode_documents),
    ):
        for i, got in enumerate(encode(texts)):
            want = reference[f"{name}/{role}/{i}"]
            assert got.shape == want.shape, (role, i)  # expansion to 32 / skiplist / truncation agree
            if kind == "abs":
                assert np.abs(got - want).max() <= limit
            else:
                assert (got * want).sum(axis=1).min() >= limit
    query_lengths = [len(v) for v in encoder.encode_queries(TEXTS["queries"])]
    assert query_lengths == [32, 32, 32]  # two expanded with [MASK], one truncated


def test_the_exported_manifests_carry_the_checkpoints_conventions():
    pylate = load_manifest(EXPORTED / "tiny-pylate")
    colbert = load_manifest(EXPORTED / "tiny-colbert")
    assert (pylate.query.marker, pylate.document.marker) == ("[Q] ", "[D] ")
    assert (colbert.query.marker, colbert.document.marker) == ("[unused0]", "[unused1]")
    for manifest in (pylate, colbert):
        assert manifest.dim == 16 and manifest.query.expand_to == 32 and not manifest.query.attend_to_expansion
        assert set(manifest.document.skiplist) == set(string.punctuation)
        manifest.verify_files()
    assert pylate.max_batch_size == 1 and colbert.max_batch_size is None  # int8 vs fp32
    assert pylate.license == "apache-2.0"


def test_a_modernbert_checkpoint_exports_without_token_types_and_with_its_own_mask_token():
    manifest = load_manifest(EXPORTED / "tiny-modernbert")
    assert (manifest.query.mask_token, manifest.query.marker, manifest.document.skiplist) == ("<mask>", "[Q] ", ())
    encoder = OnnxEncoder(manifest, threads=1)
    assert encoder._inputs == ["input_ids", "attention_mask"]


def test_an_index_runs_on_an_exported_model(tmp_path):
    with li.open(tmp_path / "tiny.lateint", create=True, model=EXPORTED / "tiny-pylate") as idx:
        idx.add([{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS["documents"])])
        hits = idx.search(TEXTS["queries"][0], k=3, exact=True)
        assert sorted(h.id for h in hits) == ["d0", "d1", "d2"]
        assert idx.info().model == "tiny-pylate"


# --- layouts, read without torch -------------------------------------------------------------


def test_a_pylate_checkpoint_gives_its_prefix_tokens_expansion_and_projection(tmp_path):
    plan = read_checkpoint(pylate_folder(tmp_path / "ck"))
    c = plan.conventions
    assert plan.layout == "pylate" and plan.backbone == tmp_path / "ck"
    assert (c.query_marker, c.document_marker, c.query_length, c.document_length) == ("[Q] ", "[D] ", 24, 300)
    assert (c.expand_to, c.attend_to_expansion, c.mask_token, c.skiplist) == (24, False, "<mask>", (".", ","))
    (head,) = plan.projections
    assert (head.in_features, head.out_features, head.weight_key, head.bias_key) == (8, 4, "linear.weight", None)


def test_a_sentence_transformers_model_keeps_every_token_and_its_prompts(tmp_path):
    folder = hf_folder(tmp_path / "st")
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    plan = read_checkpoint(folder)
    assert plan.layout == "sentence-transformers" and plan.projections == ()
    assert plan.conventions.query_prefix == "query: " and plan.conventions.query_marker is None
    assert any("Pooling" in note for note in plan.notes)


def test_a_stanford_colbert_checkpoint_gives_markers_and_its_linear_layer(tmp_path):
    folder = hf_folder(tmp_path / "colbert", {"linear.weight": [4, 8]})
    (folder / "artifact.metadata").write_text(json.dumps({"query_maxlen": 40, "doc_maxlen": 220}))
    plan = read_checkpoint(folder)
    c = plan.conventions
    assert plan.layout == "colbert" and plan.projections[0].out_features == 4
    assert (c.query_marker, c.document_marker, c.expand_to, c.document_length) == ("[unused0]", "[unused1]", 40, 220)
    assert c.skiplist == tuple(string.punctuation)
    assert plan.with_overrides(query_length=16, document_marker=None).conventions.query_length == 16


def test_a_plain_checkpoint_takes_a_projection_file(tmp_path):
    folder = hf_folder(tmp_path / "plain")
    write_safetensors(tmp_path / "head.safetensors", {"proj.weight": [6, 8], "proj.bias": [6]})
    plan = read_checkpoint(folder, tmp_path / "head.safetensors")
    assert plan.layout == "huggingface"
    assert (plan.projections[0].out_features, plan.projections[0].bias_key) == (6, "proj.bias")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("pickle", "pickle"),
        ("activation", "activation"),
        ("bias", "bias"),
        ("header", "header length"),
        ("no-linear", "linear.weight"),
        ("bin-projection", "safetensors"),
        ("not-a-folder", "not a checkpoint folder"),
    ],
)
def test_a_checkpoint_that_cannot_be_exported_is_a_clear_error(tmp_path, damage, message):
    projection = None
    if damage == "pickle":
        folder = tmp_path / "ck"
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
    elif damage == "activation":
        folder = pylate_folder(tmp_path / "ck", activation="torch.nn.modules.activation.Softmax")
    elif damage == "bias":
        folder = pylate_folder(tmp_path / "ck")
        (folder / "1_Dense" / "config.json").write_text(json.dumps({"bias": True}))
    elif damage == "header":
        folder = pylate_folder(tmp_path / "ck")
        (folder / "1_Dense" / "model.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{}")
    elif damage == "no-linear":
        folder = hf_folder(tmp_path / "ck")
        (folder / "artifact.metadata").write_text("{}")
    elif damage == "bin-projection":
        folder = hf_folder(tmp_path / "ck")
        projection = tmp_path / "head.bin"
        projection.write_bytes(b"\x80\x04")
    else:
        folder = tmp_path / "missing"
    with pytest.raises(ModelError, match=message):
        read_checkpoint(folder, projection)


def test_safetensors_headers_are_read_without_a_framework(tmp_path):
    write_safetensors(tmp_path / "w.safetensors", {"a.weight": [3, 2]})
    assert safetensors_header(tmp_path / "w.safetensors")["a.weight"]["shape"] == [3, 2]


# --- the command -------------------------------------------------------------------------------


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "something").write_text("x")
    with pytest.raises(InvalidInputError, match="not empty"):
        export_checkpoint(pylate_folder(tmp_path / "ck"), dest)
    assert main(["models", "export", str(tmp_path / "ck"), str(dest)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lateint: error:") and "not empty" in err[0]


def test_an_unwritable_destination_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from lateint_lite import model_export

    monkeypatch.setattr(model_export, "require", lambda *a: None)  # as if the export extra were installed
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="a-file/out") as caught:
        export_checkpoint(pylate_folder(tmp_path / "ck"), blocker / "out")
    assert isinstance(caught.value.__cause__, OSError)
    assert main(["models", "export", str(tmp_path / "ck"), str(blocker / "out")]) == 74
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lateint: error: {blocker / 'out'}:")


@pytest.mark.skipif(HAS_TORCH, reason="torch is installed here; this checks the message given without it")
def test_export_without_the_extra_names_it(tmp_path, capsys):
    with pytest.raises(MissingExtraError, match=r"lateint-lite\[export\]"):
        export_checkpoint(pylate_folder(tmp_path / "ck"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["models", "export", str(tmp_path / "ck"), str(tmp_path / "out")]) == 1
    assert "export extra" in capsys.readouterr().err


def test_export_rejects_a_non_positive_length(tmp_path, capsys):
    assert main(["models", "export", str(tmp_path), str(tmp_path / "o"), "--query-length", "0"]) != 0
    assert "--query-length must be positive" in capsys.readouterr().err
