"""Files and folders as documents: text extraction, skipped files with reasons, metadata, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest

from lateint_lite.cli import main
from lateint_lite.errors import InvalidInputError
from lateint_lite.extract import NotText, extract
from lateint_lite.sources import collect_documents

HTML = """<!doctype html><html><head><title>Tide  tables</title><style>p { color: red }</style>
<script>var hidden = "never indexed";</script></head>
<body><h1>Tides</h1><p>The Moon&apos;s gravity <b>pulls</b> the oceans.</p>
<ul><li>spring</li><li>neap</li></ul></body></html>"""


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("Plain notes about tides.\n")
    (root / "b.md").write_text("# Heading\n\nMarkdown about the moon.\n")
    (root / "sub" / "c.html").write_text(HTML)
    (root / "sub" / "d.rst.gz").write_bytes(gzip.compress(b"Gzipped reStructuredText about waves."))
    (root / "sub" / "deeper" / "e.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "empty.md").write_text("   \n")
    (root / "broken.txt.gz").write_bytes(b"not gzip at all")
    (root / ".git" / "config.txt").write_text("hidden, never read")
    (root / ".hidden.txt").write_text("hidden, never read")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    (root / "records.jsonl").write_text(json.dumps({"id": "r1", "text": "a JSON record"}) + "\n")
    return root


def test_folders_are_walked_and_unusable_files_skipped_with_reasons(folder):
    collected = collect_documents([str(folder)])
    ids = [d["id"] for d in collected.documents]
    assert ids == [str(folder / n) for n in ("a.txt", "b.md", "sub/c.html", "sub/d.rst.gz")]
    skipped = {os.path.relpath(s.path, folder): s.reason for s in collected.skipped}
    assert skipped.keys() == {"broken.txt.gz", "empty.md", "latin1.txt", "sub/deeper/e.txt"}
    assert skipped["sub/deeper/e.txt"] == "binary"
    assert skipped["latin1.txt"].startswith("not UTF-8 text")
    assert skipped["empty.md"] == "no text"
    assert skipped["broken.txt.gz"].startswith("bad gzip data")
    assert collected.skip_summary().startswith("4 files skipped: ")


def test_html_text_and_title_and_file_metadata(folder):
    doc = next(d for d in collect_documents([str(folder)]).documents if d["id"].endswith("c.html"))
    assert doc["text"] == "Tides\nThe Moon's gravity pulls the oceans.\nspring\nneap"
    path = folder / "sub" / "c.html"
    assert doc["meta"]["title"] == "Tide tables"
    assert doc["meta"]["path"] == str(path)
    assert doc["meta"]["size"] == path.stat().st_size
    assert doc["meta"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc["meta"]["mtime"].endswith("Z") and doc["meta"]["mtime"][:4].isdigit()
    gz = next(d for d in collect_documents([str(folder)]).documents if d["id"].endswith(".rst.gz"))
    assert gz["text"] == "Gzipped reStructuredText about waves."


def test_html_in_a_declared_encoding_is_decoded(tmp_path):
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"></head>'
    page += "<body><p>Caf\xe9 cr\xe8me</p></body></html>"
    assert extract("old.html", page.encode("latin-1")).text == "Café crème"
    undeclared = "<html><body><p>Jan Pokorn\xfd \x93quoted\x94</p></body></html>".encode("latin-1")
    assert extract("old.html", undeclared).text == "Jan Pokorný \u201cquoted\u201d"  # windows-1252, as browsers
    with pytest.raises(NotText, match="not UTF-8"):
        extract("old.txt", "Caf\xe9".encode("latin-1"))  # plain text declares nothing: skipped, not guessed


def test_text_with_a_byte_order_mark_and_a_chosen_encoding_are_read(tmp_path, folder, capsys):
    text = "Tides — café 潮"  # an em dash, a Latin-1 letter, a CJK character
    for codec in ("utf-16", "utf-16-be", "utf-32", "utf-32-be"):  # Windows "Unicode" text: NUL bytes, a BOM
        data = ("\ufeff" + text).encode(codec) if codec.endswith("-be") else text.encode(codec)
        assert extract(f"notes-{codec}.txt", data).text == text
    with pytest.raises(NotText, match="not UTF-16 text despite its byte order mark"):
        extract("broken.txt", b"\xff\xfe" + b"\x00\xd8")  # a lone surrogate after the mark
    assert extract("old.txt", b"caf\xe9 \x93quoted\x94", fallback="cp1252").text == "café “quoted”"
    assert extract("old.txt", b"caf\xe9", fallback="utf-8").text == "caf\ufffd"  # undecodable: U+FFFD
    assert extract("new.txt", "café".encode(), fallback="cp1252").text == "café"  # UTF-8 first
    for odd in ("undefined", "idna"):  # codecs that raise even with errors="replace": a skip, not a crash
        with pytest.raises(NotText, match=f"not {odd} text"):
            extract("old.txt", b"caf\xe9 " + b"x" * 70, fallback=odd)
    collected = collect_documents([str(folder)], encoding="latin-1")
    latin = next(d for d in collected.documents if d["id"].endswith("latin1.txt"))
    assert latin["text"] == "café au lait" and "latin1.txt" not in {os.path.basename(s.path) for s in collected.skipped}
    for bad in ("no-such-codec", "rot13", "base64"):  # unknown, or not a text encoding
        with pytest.raises(InvalidInputError, match="encoding"):
            collect_documents([str(folder)], encoding=bad)
    index = str(tmp_path / "enc.lateint")
    assert main(["add", index, str(folder / "latin1.txt"), "--encoding", "nope", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lateint: error: unknown text encoding 'nope'") and err.count("\n") == 1


def test_glob_chooses_the_files_and_jsonl_in_folders_are_records(folder):
    chosen = collect_documents([str(folder)], ["*.MD", "*.jsonl"])
    assert [d["id"] for d in chosen.documents] == [str(folder / "b.md"), "r1"]
    assert [s.reason for s in chosen.skipped] == ["no text"]


def test_named_files_are_taken_whatever_their_suffix_and_missing_paths_fail(folder):
    collected = collect_documents([str(folder / "photo.jpg"), str(folder / ".hidden.txt")])
    assert [d["id"] for d in collected.documents] == [str(folder / ".hidden.txt")]
    assert collected.skipped[0].reason == "binary"
    with pytest.raises(InvalidInputError, match="no such file or directory"):
        collect_documents([str(folder / "nope.txt")])


def test_pdf_text_through_pypdf(tmp_path):
    pytest.importorskip("pypdf", reason="the pdf extra (pypdf) is not installed")
    extracted = extract("paper.pdf", minimal_pdf("Ocean tides follow the Moon"))
    assert extracted.text == "Ocean tides follow the Moon" and extracted.meta == {"pages": 1}
    with pytest.raises(NotText, match="unreadable PDF"):
        extract("broken.pdf", b"%PDF-1.4 garbage")


def test_cli_adds_a_folder_reports_skips_and_skips_unchanged_files(folder, tmp_path, capsys, fake_encoder, monkeypatch):
    import lateint_lite as li

    index = tmp_path / "files.lateint"
    li.open(index, create=True, encoder=fake_encoder).close()
    opener = li.open

    def with_fake(path, **kwargs):  # the index records the fake encoder; hand it over
        kwargs.pop("model", None)
        kwargs.setdefault("encoder", fake_encoder)
        return opener(path, **kwargs)

    monkeypatch.setattr("lateint_lite.index.open", with_fake)
    assert main(["add", str(index), str(folder), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"added 4 documents in {index} (4 in total); 4 files skipped: ")
    assert f"lateint: skipped {folder / 'sub' / 'deeper' / 'e.txt'}: binary\n" in err

    assert main(["add", str(index), str(folder), "--skip-unchanged", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("upserted 0 documents in")
    (folder / "a.txt").write_text("Plain notes about tides, revised.\n")
    assert main(["add", str(index), str(folder), "--skip-unchanged", "--no-progress"]) == 0
    assert "upserted 1 document in" in capsys.readouterr().out
    with li.open(index, encoder=fake_encoder) as idx:
        assert idx.get(str(folder / "a.txt")).text == "Plain notes about tides, revised.\n"
        assert len(idx) == 4

    assert main(["search", str(index), "waves tides", "--json", "--where", f"path^={folder / 'sub'}/"]) == 0
    found = {hit["id"] for hit in json.loads(capsys.readouterr().out)}
    assert found == {str(folder / "sub" / "c.html"), str(folder / "sub" / "d.rst.gz")}

    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "x.txt").write_bytes(b"\x00\x01")
    assert main(["add", str(index), str(empty), "--no-progress"]) == 1
    assert capsys.readouterr().err.endswith("error: no documents found in " + f"{empty} (1 file skipped: 1 binary)\n")
