"""The lateint CLI, run in-process with the real default model."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from lateint_lite.cli import main

pytestmark = pytest.mark.model

CORPUS = [
    {"id": "tides", "text": "The Moon's gravity pulls on the oceans and causes tides.", "meta": {"lang": "en"}},
    {"id": "bread", "text": "Bread rises because yeast releases carbon dioxide.", "meta": {"lang": "en"}},
    {"_id": "volcano", "title": "Volcanoes", "text": "Molten rock reaches the surface at volcanoes."},
]


def run(*argv):
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in CORPUS) + "\n")
    return path


@pytest.fixture
def built(tmp_path, corpus_file):
    index = tmp_path / "cli.lateint"
    code, out = run("add", str(index), str(corpus_file), "--no-progress")
    assert code == 0, out
    assert "added 3 documents" in out
    return index


def test_search_prints_ranked_tab_separated_hits(built):
    code, out = run("search", str(built), "why are there tides?", "-k", "2")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    rank, score, doc_id, _snippet = lines[0].split("\t")
    assert (rank, doc_id) == ("1", "tides")
    assert float(score) > float(lines[1].split("\t")[1])


def test_search_json(built):
    code, out = run("search", str(built), "yeast", "--json", "-k", "3")
    assert code == 0
    hits = json.loads(out)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["id"] == "bread"
    assert hits[0]["meta"] == {"lang": "en"}


def test_get_info_delete(built):
    code, out = run("get", str(built), "volcano", "--json")
    doc = json.loads(out)
    assert doc["text"].startswith("Volcanoes\n\nMolten rock")
    assert doc["meta"] == {"title": "Volcanoes"}
    code, out = run("info", str(built), "--json")
    info = json.loads(out)
    assert info["documents"] == 3 and info["model"] == "minilm-l6-v2" and info["dim"] == 384
    code, out = run("delete", str(built), "bread")
    assert code == 0 and "deleted 1" in out
    code, out = run("search", str(built), "yeast", "--json")
    assert "bread" not in [h["id"] for h in json.loads(out)]


def test_add_plain_text_files(tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("Photosynthesis turns sunlight into sugar.")
    index = tmp_path / "notes.lateint"
    assert run("init", str(index))[0] == 0
    assert run("add", str(index), str(note), "--no-progress")[0] == 0
    _, out = run("search", str(index), "sunlight", "--json")
    assert json.loads(out)[0]["id"] == str(note)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["search", "{index}", "tides", "-k", "0"], "k must be a positive integer"),
        (["search", "{index}", "   "], "query must not be empty"),
        (["get", "{index}", "ghost"], "no document with id 'ghost'"),
        (["delete", "{index}", "ghost"], "not in the index"),
        (["search", "{missing}", "x"], "no such index"),
        (["add", "{index}", "{corpus}", "--no-progress"], "already in the index"),
        (["add", "{index}", "{bad_json}", "--no-progress"], "invalid JSON"),
        (["add", "{index}", "{missing_file}", "--no-progress"], "no such file or directory"),
        (["init", "{index}"], "already exists"),
    ],
)
def test_errors_are_one_line_and_exit_1(built, corpus_file, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "fine"}\n{oops\n')
    names = {
        "index": str(built),
        "missing": str(tmp_path / "nope.lateint"),
        "corpus": str(corpus_file),
        "bad_json": str(bad),
        "missing_file": str(tmp_path / "nope.jsonl"),
    }
    capsys.readouterr()
    code, _ = run(*[a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("lateint: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2


def test_console_entry_point_runs_without_traceback(tmp_path):
    """The real process: errors are one line on stderr and a non-zero status."""
    proc = subprocess.run(
        [sys.executable, "-m", "lateint_lite", "info", str(tmp_path / "missing.lateint")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("lateint: error:") and "Traceback" not in proc.stderr


def test_demo_prints_ranked_hits():
    code, out = run("demo", "-k", "2")
    assert code == 0
    assert "indexed 40 documents" in out
    blocks = out.split("query: ")[1:]
    assert len(blocks) == 3
    # The sample corpus has one clearly right answer per example query.
    assert "cook-3" in blocks[0].splitlines()[1]
    assert "tech-2" in blocks[1].splitlines()[1]
    assert "astro-2" in blocks[2].splitlines()[1]


def test_build_then_search_with_pruning_flags(built):
    code, out = run("build", str(built), "--json", "--no-progress", "--residual-dim", "64")
    assert code == 0
    report = json.loads(out)
    assert report["documents"] == 3 and report["residual_dim"] == 64 and report["bytes_per_token"] == 18
    code, out = run("info", str(built), "--json")
    assert json.loads(out)["codec"] == "residual"
    code, out = run("search", str(built), "why are there tides?", "--json", "-k", "1")
    assert json.loads(out)[0]["id"] == "tides"
    code, out = run("search", str(built), "tides", "--json", "--exact", "-k", "3")
    exact = json.loads(out)
    code, out = run("search", str(built), "tides", "--json", "--ncells", "1000", "--threshold", "-2", "--ndocs", "100")
    assert [h["id"] for h in json.loads(out)] == [h["id"] for h in exact]
    code, out = run("search", str(built), "tides", "--mode", "pooled", "--json", "-k", "1")
    assert json.loads(out)[0]["id"] == "tides"


def test_init_with_punctuation_skiplist(tmp_path, corpus_file, built):
    _, out = run("get", str(built), "tides", "--json")
    plain_tokens = json.loads(out)["n_tokens"]
    index = tmp_path / "skip.lateint"
    assert run("init", str(index), "--skiplist", "punctuation")[0] == 0
    assert run("add", str(index), str(corpus_file), "--no-progress")[0] == 0
    _, out = run("info", str(index), "--json")
    assert json.loads(out)["skiplist"] == "punctuation"
    _, out = run("get", str(index), "tides", "--json")
    assert json.loads(out)["n_tokens"] == plain_tokens - 2  # "'" in "Moon's" and the full stop


def test_upsert_where_rerank_optimize(built, tmp_path):
    update = tmp_path / "update.jsonl"
    update.write_text(
        json.dumps({"id": "bread", "text": "Sourdough bread uses wild yeast.", "meta": {"lang": "de", "year": 2021}})
        + "\n"
    )
    code, out = run("upsert", str(built), str(update), "--no-progress")
    assert code == 0 and "upserted 1" in out
    _, out = run("get", str(built), "bread", "--json")
    assert json.loads(out)["meta"] == {"lang": "de", "year": 2021}
    _, out = run("search", str(built), "yeast", "--json", "--where", "lang=de")
    assert [h["id"] for h in json.loads(out)] == ["bread"]
    _, out = run("search", str(built), "yeast", "--json", "--where", "year>=2022")
    assert json.loads(out) == []
    _, out = run("search", str(built), "tides", "--json", "--where-json", '{"lang": {"in": ["en"]}}')
    assert [h["id"] for h in json.loads(out)] == ["tides"]
    _, out = run("rerank", str(built), "why are there tides?", "volcano", "tides", "--json")
    assert [h["id"] for h in json.loads(out)] == ["tides", "volcano"]
    code, out = run("optimize", str(built), "--json", "--no-progress")
    assert code == 0 and json.loads(out)["action"] in ("nothing to build", "lists rebuilt")


@pytest.mark.parametrize("clause", ["lang", "=en", "lang~en"])
def test_bad_where_clauses_are_one_line_errors(built, capsys, clause):
    code, _ = run("search", str(built), "tides", "--where", clause)
    assert code == 1 and capsys.readouterr().err.startswith("lateint: error: --where")


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The API example in README.md, executed as written (in a scratch directory)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "docs.lateint").exists()
    assert namespace["reranked"][0].id == "a2"


def test_a_directory_is_not_an_index(tmp_path, capsys):
    assert main(["search", str(tmp_path), "query"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lateint: error:") and "is a directory" in err and "Traceback" not in err


def test_export_creates_missing_parent_folders(built, tmp_path, capsys):
    target = tmp_path / "ship" / "v1" / "x.lateint"
    assert main(["export", str(built), str(target)]) == 0
    assert target.is_file()
    assert main(["info", str(target)]) == 0


def test_export_below_a_file_is_one_line(built, tmp_path, capsys):
    (tmp_path / "plain").write_text("not a folder")
    assert main(["export", str(built), str(tmp_path / "plain" / "x.lateint")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lateint: error:") and "is not a directory" in err and err.count("\n") == 1


def test_a_query_with_bytes_that_are_not_utf8_still_searches(built, capsys):
    query = b"\xff\xfe tides".decode("utf-8", "surrogateescape")  # how Python hands such argv over
    code, out = run("search", str(built), query, "-k", "2")
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_damaged_gzip_input_is_one_line(built, tmp_path, capsys):
    import gzip

    damaged = tmp_path / "docs.jsonl.gz"
    damaged.write_bytes(gzip.compress(b'{"id": "z", "text": "fine"}\n' * 50)[:30])
    assert main(["add", str(built), str(damaged), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lateint: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_a_file_whose_name_is_not_utf8_gets_an_id(tmp_path, capsys):
    import os

    index = tmp_path / "notes.lateint"
    name = os.fsdecode(b"bad\xffname.txt")  # how Python hands such a file name over
    (tmp_path / name).write_text("moon tides and oceans")
    code, _ = run("add", str(index), str(tmp_path / name), "--no-progress", "--no-build")
    assert code == 0
    code, out = run("search", str(index), "tides", "--json")
    assert code == 0 and "bad\ufffdname.txt" in json.loads(out)[0]["id"]


def test_ids_lists_pages_of_ids(built, capsys):
    code, out = run("ids", str(built))
    every = out.split()
    assert code == 0 and len(every) >= 3
    code, out = run("ids", str(built), "--offset", "1", "--limit", "2")
    assert code == 0 and out.split() == every[1:3]
    assert main(["ids", str(built), "--limit", "-1"]) == 1


def test_an_automatic_build_is_announced_on_stderr(tmp_path, capsys, monkeypatch):
    from lateint_lite import maintenance

    monkeypatch.setattr(maintenance, "AUTO_BUILD_TOKENS", 50)
    corpus = tmp_path / "docs.jsonl"
    lines = [json.dumps({"id": f"n{i}", "text": f"note {i} about tides, moons and the sea floor"}) for i in range(40)]
    corpus.write_text("\n".join(lines) + "\n")
    assert main(["add", str(tmp_path / "auto.lateint"), str(corpus), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "lateint: " in err and "building automatically" in err


def test_a_slow_first_search_says_why_on_stderr(built, capsys, monkeypatch):
    import time

    from lateint_lite import cli
    from lateint_lite.index import Index

    real_search = Index.search

    def slow_search(self, *args, **kwargs):
        time.sleep(0.5)
        return real_search(self, *args, **kwargs)

    monkeypatch.setattr(cli, "SLOW_START_NOTICE_S", 0.05)
    monkeypatch.setattr(Index, "search", slow_search)
    monkeypatch.setenv("LATEINT_KERNELS", "numba")  # a small index would run the numpy tier: nothing to compile
    code, out = run("search", str(built), "tides", "-k", "2")
    err = capsys.readouterr().err
    assert code == 0 and len(out.strip().splitlines()) == 2
    assert err.count("compiling the search kernels") == 1 and err.startswith("lateint: ")


def test_a_fast_search_prints_nothing_on_stderr(built, capsys):
    run("search", str(built), "tides", "-k", "2")  # kernels compiled by now
    capsys.readouterr()
    code, _ = run("search", str(built), "tides", "-k", "2")
    assert code == 0 and capsys.readouterr().err == ""
