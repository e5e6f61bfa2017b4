"""Explained matches: highlight spans against the original text, snippet windows, CLI/JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.cli import main
from lateint_lite.explain import (
    MAX_WORD_CHARS,
    marked_spans,
    maxsim_spans,
    merge_spans,
    readable_spans,
    render,
    snippet_window,
    whole_words,
)

FILLER = " ".join(f"filler{i}" for i in range(120))
LONG = f"{FILLER} the moon pulls the ocean and makes tides twice a day {FILLER}"
DOCS = [
    {"id": "long", "text": LONG, "meta": {"kind": "long"}},
    {"id": "tea", "text": "Black tea, steeped in hot water.", "meta": {"kind": "short"}},
    {"id": "coffee", "text": "Roasted coffee beans ground fine.", "meta": {"kind": "short"}},
]


def test_maxsim_spans_take_each_query_tokens_best_document_token():
    similarity = np.array([[0.9, 0.1, 0, 0], [0, 0, 0.2, 0.1], [0, 0, 0, 1.0]], dtype=np.float32)
    spans = [(0, 3), None, (4, 9), (9, 12)]
    # query 0 -> token 0; query 1 -> token 2 but too weak (0.2); query 2 -> token 3
    assert maxsim_spans(similarity, spans, 0.5) == [(0, 3), (9, 12)]
    assert maxsim_spans(similarity, spans[:3], 0.5) == []  # tokens and spans must line up


@pytest.mark.parametrize("build", [False, True])
def test_token_similarities_match_decoded_vectors(fake_index, build):
    """The residual codec's shortcut equals the similarity with its decoded, renormalized tokens."""
    fake_index.add(DOCS)
    if build:
        fake_index.build(residual_dim=16, n_centroids=8)
    from lateint_lite.encoder import l2_normalize

    store, codec = fake_index._store, fake_index._cache.current().codec
    query = l2_normalize(fake_index.encoder.encode_queries(["moon tides water"])[0])
    for row in store.token_payloads([1, 2, 3]):
        expected = query @ codec.decode(row).T
        np.testing.assert_allclose(codec.token_similarities(codec.prepare(query), row), expected, atol=1e-5)


def test_span_helpers():
    assert merge_spans([(5, 8), (0, 2), (2, 4), (7, 10)]) == [(0, 4), (5, 10)]
    assert marked_spans("a tide here", "a \x02tide\x03 here") == [(2, 6)]
    assert marked_spans("changed", "\x02other\x03") == []
    start, end = snippet_window(LONG, [(LONG.index("moon"), LONG.index("moon") + 4)], width=60)
    assert start <= LONG.index("moon") < LONG.index("moon") + 4 <= end and end - start < 80
    assert LONG[start - 1].isspace() and (end == len(LONG) or LONG[end].isspace())
    text = "one two three four"
    assert render(text, (4, 13), [(4, 7)], "[", "]") == "…[two] three…"
    assert render(text, (0, len(text)), [(0, 3), (4, 7), (14, 18)], "[", "]") == "[one two] three [four]"


def test_word_pieces_widen_to_whole_words():
    text = "you can't borrow it mutably; borrows_mutably: C++ and x86-64"
    piece = text.index("mutably") + 3  # "muta|bly": the model matched a piece inside the word
    assert whole_words([(piece - 3, piece)], text) == [(piece - 3, piece + 4)]
    inner = text.index("borrows_mutably") + 10  # "borrows_mu[ta]bly": the underscore ends a word
    assert [text[s:e] for s, e in whole_words([(inner, inner + 2)], text)] == ["mutably"]
    exact = (text.index("borrow"), text.index("borrow") + 6)  # already a whole word: unchanged
    assert whole_words([exact], text) == [exact]
    plus = text.index("C++")  # punctuation pieces next to a word stay as they are
    assert [text[s:e] for s, e in whole_words([(plus, plus + 2), (plus + 1, plus + 3)], text)] == ["C++"]
    assert [text[s:e] for s, e in whole_words([(text.index("86"), text.index("86") + 2)], text)] == ["x86"]
    # two pieces of one word merge into one span; edges of the text are word edges
    assert whole_words([(1, 2), (2, 3), (len(text) - 1, len(text))], text) == [(0, 3), (len(text) - 2, len(text))]
    blob = "k" * (MAX_WORD_CHARS + 10)  # a hash-like run: the piece stays cut
    assert whole_words([(5, 9)], blob) == [(5, 9)]
    assert whole_words([], text) == []


def test_lone_punctuation_is_marked_only_when_the_query_has_it():
    text = 'move to "the end" in C++ code'
    quote, plus = text.index('"'), text.index("+")
    spans = [(quote, quote + 1), (text.index("end"), text.index("end") + 2), (plus, plus + 2)]
    assert [text[s:e] for s, e in readable_spans(spans, text, "end of file")] == ["end"]
    assert [text[s:e] for s, e in readable_spans(spans, text, "C++ end")] == ["end", "++"]
    assert readable_spans(spans, text, None) == [(text.index("end"), text.index("end") + 3)]


@pytest.fixture(params=["int8", "built"])
def explained(request, fake_index):
    fake_index.add(DOCS)
    if request.param == "built":
        fake_index.build(residual_dim=16, n_centroids=8)
    return fake_index


def test_maxsim_highlights_are_the_matched_words_of_the_original_text(explained):
    hit = explained.search("moon tides", k=1)[0]
    assert hit.id == "long"
    assert {hit.text[s:e] for s, e in hit.highlights} == {"moon", "tides"}
    start, end = hit.snippet_span
    assert start > 0 and end < len(hit.text) and "moon" in hit.snippet and hit.snippet.startswith("…")
    assert "**moon**" in hit.marked_snippet() and "**tides**" in hit.marked_snippet()  # not adjacent


def test_bm25_and_hybrid_highlights_and_none_for_pooled(explained):
    bm25 = explained.search("steeped tea", k=1, mode="bm25")[0]
    assert bm25.id == "tea" and {bm25.text[s:e] for s, e in bm25.highlights} == {"tea", "steeped"}
    hybrid = explained.search("steeped tea", k=1, mode="hybrid")[0]
    assert {hybrid.text[s:e].lower() for s, e in hybrid.highlights} >= {"tea", "steeped"}
    pooled = explained.search("steeped tea", k=1, mode="pooled")[0]
    assert pooled.highlights == () and pooled.snippet == "Black tea, steeped in hot water."
    plain = explained.search("moon tides", k=1, highlight=False)[0]
    assert plain.highlights == () and plain.snippet_span is None and plain.snippet.startswith("filler0 filler1")


def test_rerank_and_vector_search_are_explained(explained, fake_encoder):
    reranked = explained.rerank("roasted beans", ["tea", "coffee"])
    assert reranked[0].id == "coffee" and {reranked[0].text[s:e] for s, e in reranked[0].highlights} == {
        "Roasted",
        "beans",
    }
    by_vectors = explained.search_vectors(fake_encoder.encode_queries(["hot water"])[0], k=1)[0]
    assert {by_vectors.text[s:e] for s, e in by_vectors.highlights} == {"hot", "water"}


@pytest.mark.model
def test_real_model_spans_line_up_with_its_token_vectors(real_encoder):
    texts = [
        "Why onions make you cry. Cutting an onion releases enzymes!",
        "Ünïcode, naïve café — and emoji 🌊 tides; (parentheses) [brackets].",
        "word " * 400,  # truncated at the model's document length
    ]
    from lateint_lite.encoder import PUNCTUATION, OnnxEncoder

    skipping = OnnxEncoder(real_encoder.manifest, verify=False, skiplist=PUNCTUATION)
    for encoder in (real_encoder, skipping):
        _check_spans_line_up(encoder, texts)


def _check_spans_line_up(encoder, texts):
    all_spans = encoder.document_token_spans(texts)
    for text, vectors, spans in zip(texts, encoder.encode_documents(texts), all_spans, strict=True):
        assert len(spans) == len(vectors)
        for span in spans:
            if span is not None:
                assert 0 <= span[0] < span[1] <= len(text) and text[span[0] : span[1]].strip()


@pytest.mark.model
def test_real_model_highlights_point_at_what_matched(tmp_path, real_encoder):
    with li.open(tmp_path / "real.lateint", create=True, encoder=real_encoder) as idx:
        idx.add([{"id": "onion", "text": "Why onions make you cry. Cutting an onion breaks its cells."}])
        hit = idx.search("chopping onions brings tears", k=1)[0]
    matched = [hit.text[s:e].lower() for s, e in hit.highlights]
    assert any(word.startswith("onion") for word in matched), matched
    assert all(hit.text[s:e] == hit.text[s:e].strip() and e > s for s, e in hit.highlights)
    text = hit.text  # word pieces ("onion" of "onions") are marked as whole words
    for s, e in hit.highlights:
        assert (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum())


def test_cli_json_fields_full_text_jsonl_and_markers(explained, tmp_path, capsys, monkeypatch, fake_encoder):
    opener = li.open

    def with_fake(path, **kwargs):
        kwargs.setdefault("encoder", fake_encoder)
        return opener(path, **kwargs)

    monkeypatch.setattr("lateint_lite.index.open", with_fake)
    path = str(explained.path)
    capsys.readouterr()
    assert main(["search", path, "moon tides", "-k", "1"]) == 0
    assert "**moon**" in capsys.readouterr().out
    assert main(["search", path, "moon tides", "-k", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert set(record) == {"rank", "id", "score", "meta", "snippet"} and "moon" in record["snippet"]
    assert main(["search", path, "moon tides", "-k", "2", "--jsonl", "--fields", "id,highlights", "--full-text"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and set(lines[0]) == {"id", "highlights", "text"}
    assert {lines[0]["text"][s:e] for s, e in lines[0]["highlights"]} == {"moon", "tides"}
    assert main(["search", path, "moon", "--json", "--fields", "id,secret"]) == 1
    assert "unknown hit field 'secret'" in capsys.readouterr().err
    assert main(["search", path, "moon", "--fields", "id"]) == 1
    assert capsys.readouterr().err == "lateint: error: --fields and --full-text apply to --json or --jsonl output\n"


@pytest.mark.model
def test_long_documents_are_searched_to_the_end_as_passages(tmp_path, real_encoder):
    """An answer past the first passage is found, highlighted where it is, and counted as split."""
    filler = " ".join(f"Paragraph {i} talks about the weather, the harbour and the trains." for i in range(120))
    answer = "The secret ingredient of the soup is saffron from Valencia."
    docs = [
        {"id": "long", "text": f"{filler} {answer}", "meta": {"n": 1}},
        {"id": "short", "text": "Soup recipes often use onions and garlic.", "meta": {"n": 2}},
    ]
    with li.open(tmp_path / "passages.lateint", create=True, encoder=real_encoder) as idx:
        idx.add(docs)
        assert idx.info().split_documents == 1  # counted from what is stored, for any encoder
        hit = idx.search("what is the secret ingredient of the soup? saffron", k=1)[0]
        assert hit.id == "long" and hit.passage is not None and hit.passage >= 1  # not the first window
        start = hit.text.index(answer)
        assert hit.snippet_span[0] <= start < hit.snippet_span[1] and "saffron" in hit.snippet
        assert any(s >= start for s, _ in hit.highlights)
        assert idx.get("long").text == docs[0]["text"]  # the whole document, one record
        idx.upsert([{"id": "long", "text": "A short text now.", "meta": {"n": 3}}])
        assert idx.search("saffron soup ingredient", k=1)[0].id == "short"
        idx.delete(["long"])
        assert idx.ids() == ["short"]


@pytest.mark.model
def test_info_and_add_report_split_documents(tmp_path, capsys):
    long_text = " ".join(f"Sentence number {i} about tides and the moon." for i in range(100))
    source = tmp_path / "docs.jsonl"
    source.write_text(
        json.dumps({"id": "a", "text": long_text}) + "\n" + json.dumps({"id": "b", "text": "short"}) + "\n"
    )
    index = tmp_path / "split.lateint"
    assert main(["add", str(index), str(source), "--no-progress"]) == 0
    assert "1 split into passages" in capsys.readouterr().out
    with li.open(index, readonly=True) as idx:
        assert idx.info().split_documents == 1
