"""The shipped ONNX model through the manifest-driven encoder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytestmark = pytest.mark.model

LONG = " ".join(f"word{i}" for i in range(400))


def test_document_vectors_are_normalized_float32(real_encoder):
    (vectors,) = real_encoder.encode_documents(["Late interaction keeps one vector per token."])
    assert vectors.dtype == np.float32
    assert vectors.shape[1] == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_lengths_follow_the_manifest_not_the_tokenizer_file(real_encoder):
    """tokenizer.json pads/truncates to 128; the encoder overrides both."""
    short, long_doc = real_encoder.encode_documents(["tiny text", LONG])
    assert short.shape[0] == 4  # [CLS] tiny text [SEP]: no padding tokens
    (query,) = real_encoder.encode_queries([LONG])
    assert query.shape[0] == 64
    assert long_doc.shape[0] > 256  # passages, see below


def test_long_documents_become_overlapping_passages_not_truncated(real_encoder):
    (long_doc,) = real_encoder.encode_documents([LONG])
    windows = [w for _, w in real_encoder._passages([LONG])]
    config = real_encoder.manifest.document
    assert len(windows) > 1 and all(len(w.ids) <= config.max_length for w in windows)
    assert long_doc.shape[0] == sum(len(w.ids) for w in windows)
    for before, after in itertools.pairwise(windows):  # [CLS] overlap ... [SEP]
        assert after.ids[1 : 1 + config.overlap] == before.ids[-1 - config.overlap : -1]
    last = windows[-1]
    last_end = max(end for (_, end), special in zip(last.offsets, last.special_tokens_mask, strict=True) if not special)
    assert last_end == len(LONG)  # the last word is in the last passage: nothing cut
    # the first passage is encoded exactly as the text's first window alone would be
    first_text = LONG[: windows[0].offsets[-2][1]]
    (alone,) = real_encoder.encode_documents([first_text])
    np.testing.assert_allclose(long_doc[: len(alone)], alone, atol=1e-5)


def test_encoding_is_independent_of_batch_neighbours(real_encoder):
    texts = ["a short one", "another text of middling length about gravity and stars", LONG]
    together = real_encoder.encode_documents(texts)
    alone = [real_encoder.encode_documents([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a, b)


def test_queries_and_documents_share_a_space(real_encoder):
    docs = real_encoder.encode_documents(
        ["The Moon's gravity raises tides in the oceans.", "Bread rises because yeast releases gas."]
    )
    (query,) = real_encoder.encode_queries(["what causes ocean tides?"])
    scores = [(query @ d.T).max(axis=1).sum() for d in docs]
    assert scores[0] > scores[1]


def test_encoder_reports_identity(real_encoder):
    assert real_encoder.name == "minilm-l6-v2"
    assert len(real_encoder.fingerprint) == 64
    assert real_encoder.dim == 384


def test_punctuation_skiplist_drops_punctuation_tokens():
    from lateint_lite.encoder import PUNCTUATION, OnnxEncoder
    from lateint_lite.manifest import load_manifest

    plain = OnnxEncoder(load_manifest(), verify=False)
    skipping = OnnxEncoder(load_manifest(), verify=False, skiplist=PUNCTUATION)
    text = "Hello, world! (Late interaction; tokens.)"
    full = plain.encode_documents([text])[0]
    kept = skipping.encode_documents([text])[0]
    assert len(full) - len(kept) == 6  # , ! ( ; . )
    np.testing.assert_array_equal(kept[:2], full[:2])  # [CLS] hello
    (query_plain,), (query_skip,) = plain.encode_queries([text]), skipping.encode_queries([text])
    np.testing.assert_array_equal(query_plain, query_skip)  # queries keep every token


def test_index_records_its_skiplist(tmp_path):
    import lateint_lite as li
    from lateint_lite.errors import InvalidInputError

    path = tmp_path / "skip.lateint"
    with li.open(path, create=True, skiplist="punctuation") as idx:
        idx.add([{"id": "a", "text": "Hello, world!"}])
        assert idx.get("a").n_tokens == 4  # [CLS] hello world [SEP]
    with li.open(path) as idx:
        idx.add([{"id": "b", "text": "Again; more."}])
        assert idx.get("b").n_tokens == 4
        assert idx.info().skiplist == "punctuation"
    with pytest.raises(InvalidInputError):
        li.open(path, skiplist="punctuation")
    with pytest.raises(InvalidInputError):
        li.open(tmp_path / "bad.lateint", create=True, skiplist="commas")


def test_colbert_style_manifest_markers_and_mask_expansion(tmp_path):
    """A manifest with [Q]/[D] markers and [MASK] expansion drives the same ONNX graph."""
    import json

    from lateint_lite.encoder import OnnxEncoder
    from lateint_lite.manifest import bundled_models_dir, load_manifest

    source = bundled_models_dir() / "minilm-l6-v2"
    folder = tmp_path / "colbert-like"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (folder / name).symlink_to(source / name)
    raw = json.loads((source / "manifest.json").read_text())
    raw["name"] = "colbert-like"
    raw["query"] = {"max_length": 24, "marker": "[unused0]", "expand_to": 16, "attend_to_expansion": False}
    raw["document"] = {"max_length": 40, "marker": "[unused1]", "skiplist": [",", "."]}
    (folder / "manifest.json").write_text(json.dumps(raw))
    encoder = OnnxEncoder(load_manifest(folder))
    plain = OnnxEncoder(load_manifest())
    (query,) = encoder.encode_queries(["short query"])
    assert query.shape == (16, 384)  # [CLS] [Q] short query [SEP] + 11 [MASK]
    (long_query,) = encoder.encode_queries([LONG])
    assert long_query.shape == (24, 384)  # longer than expand_to: truncated at max_length, no padding
    (doc,) = encoder.encode_documents(["Hello, world."])
    assert doc.shape == (5, 384)  # [CLS] [D] hello world [SEP]; "," and "." skipped
    (plain_doc,) = plain.encode_documents(["Hello, world."])
    assert plain_doc.shape == (6, 384)
    assert not np.allclose(doc[1], plain_doc[1])  # the marker changes the states
    rows = encoder.query_text_rows("short query")  # which query rows explain highlights
    assert rows.tolist() == [False, False, True, True, False] + [False] * 11
    assert plain.query_text_rows("short query").tolist() == [False, True, True, False]
    assert encoder.query_text_rows(LONG).shape == (24,) and encoder.query_text_rows(LONG)[2:23].all()


def test_a_huge_text_is_cut_at_max_passages_with_a_warning(caplog):
    import dataclasses
    import logging

    from lateint_lite.encoder import OnnxEncoder, encode_passages
    from lateint_lite.manifest import load_manifest

    manifest = load_manifest()
    manifest = dataclasses.replace(manifest, document=dataclasses.replace(manifest.document, max_passages=3))
    encoder = OnnxEncoder(manifest, verify=False)
    sentence = "Tides rise and fall twice a day because of the Moon. "
    huge = sentence * 200_000  # 10 MB: cut to what 3 passages can hold before tokenizing
    with caplog.at_level(logging.WARNING, logger="lateint_lite"):
        (vectors,) = encoder.encode_documents([huge])
    assert "cut at 3 passages" in caplog.text
    windows = [w for _, w in encoder._passages([huge])]
    assert len(windows) == 3 and vectors.shape[0] == sum(len(w.ids) for w in windows)
    (short,) = encoder.encode_documents([sentence * 40])  # the same first passage
    np.testing.assert_allclose(vectors[: len(windows[0].ids)], short[: len(windows[0].ids)], atol=1e-5)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lateint_lite"):
        spans = encoder.document_token_spans([huge])  # explaining a hit: no second warning
    assert caplog.text == "" and len(spans[0]) == vectors.shape[0]
    with caplog.at_level(logging.WARNING, logger="lateint_lite"):  # a write names the document it cut
        (passages,) = encode_passages(encoder, [huge], ["notes/huge.txt"])
    assert f"'notes/huge.txt' ({len(huge)} characters) was cut at 3 passages" in caplog.text and len(passages) == 3


def test_spans_through_a_passage_are_the_first_spans_of_the_whole_document(real_encoder):
    text = " ".join(f"Sentence {i} tells of tides, moons and the {i % 7}th ocean." for i in range(400))
    passages = real_encoder.encode_document_passages([text])[0]
    assert len(passages) > 3
    (whole,) = real_encoder.document_token_spans([text])
    assert len(whole) == sum(p.shape[0] for p in passages)
    for last in (0, 2, len(passages) - 1):
        (first,) = real_encoder.document_token_spans([text], through=[last])
        assert first == whole[: sum(p.shape[0] for p in passages[: last + 1])]
