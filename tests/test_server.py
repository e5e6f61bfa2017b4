"""The HTTP server: every endpoint, its errors and limits, keys, writes, and readers during writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")
import httpx
from fastapi.testclient import TestClient
from servers import running

import lateint_lite as li
from lateint_lite.server import ServerLimits, create_app

DOCS = [
    {"id": "fruit/apple", "text": "red apples grow on apple trees", "meta": {"lang": "en", "year": 2020}},
    {"id": "fruit/pear", "text": "green pears ripen after the harvest", "meta": {"lang": "en", "year": 2022}},
    {"id": "drink/tea", "text": "black tea leaves steeped in hot water", "meta": {"lang": "de", "year": 2021}},
    {"id": "drink/coffee", "text": "roasted coffee beans ground for espresso", "meta": {"lang": "fr", "year": 2023}},
]


@pytest.fixture
def seeded(fake_index):
    fake_index.add(DOCS)
    return fake_index


@pytest.fixture
def client(seeded):
    return TestClient(create_app(seeded))


@pytest.fixture
def writer(seeded):
    return TestClient(create_app(seeded, writable=True))


def test_get_and_post_search_agree_with_the_library(client, seeded):
    expected = [h.id for h in seeded.search("apple trees", k=3)]
    by_get = client.get("/search", params={"q": "apple trees", "k": 3}).json()
    by_post = client.post("/search", json={"query": "apple trees", "k": 3}).json()
    assert [h["id"] for h in by_get["hits"]] == expected == [h["id"] for h in by_post["hits"]]
    assert by_get["hits"][0] == {
        "rank": 1,
        "id": "fruit/apple",
        "score": pytest.approx(seeded.search("apple trees", k=1)[0].score),
        "meta": {"lang": "en", "year": 2020},
        "snippet": DOCS[0]["text"],
    }


@pytest.mark.parametrize("mode", ["maxsim", "bm25", "hybrid", "pooled"])
def test_every_mode_is_served(client, seeded, mode):
    body = client.post("/search", json={"query": "coffee espresso", "k": 2, "mode": mode}).json()
    assert [h["id"] for h in body["hits"]] == [h.id for h in seeded.search("coffee espresso", k=2, mode=mode)]


def test_filters_by_query_string_and_body(client):
    where = {"year": {"gte": 2022}}
    by_get = client.get("/search", params={"q": "tea", "where": json.dumps(where)}).json()
    by_post = client.post("/search", json={"query": "tea", "where": where}).json()
    assert {h["id"] for h in by_get["hits"]} == {"fruit/pear", "drink/coffee"} == {h["id"] for h in by_post["hits"]}


def test_fields_choose_what_a_hit_carries(client):
    hits = client.get("/search", params={"q": "tea", "k": 1, "fields": "id,text"}).json()["hits"]
    assert hits == [{"id": "drink/tea", "text": DOCS[2]["text"]}]
    bad = client.get("/search", params={"q": "tea", "fields": "id,secret"})
    assert bad.status_code == 400 and "secret" in bad.json()["error"]["message"]


def test_search_many_rerank_get_ids_and_info(client, seeded):
    many = client.post("/search_many", json={"queries": ["tea", "pears"], "k": 1}).json()["results"]
    assert [r["hits"][0]["id"] for r in many] == ["drink/tea", "fruit/pear"]
    reranked = client.post("/rerank", json={"query": "apple", "ids": ["drink/tea", "fruit/apple"]}).json()
    assert [h["id"] for h in reranked["hits"]] == [h.id for h in seeded.rerank("apple", ["drink/tea", "fruit/apple"])]
    doc = client.get("/documents/fruit/apple").json()  # ids with slashes work as paths
    assert doc == {"id": "fruit/apple", "text": DOCS[0]["text"], "meta": DOCS[0]["meta"], "n_tokens": 6}
    assert client.get("/ids", params={"offset": 1, "limit": 2}).json() == {
        "total": 4,
        "offset": 1,
        "ids": ["fruit/pear", "drink/tea"],
    }
    info = client.get("/info").json()
    assert info["documents"] == 4 and info["writable"] is False and info["limits"]["max_k"] == 1000


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "kind"),
    [
        ("post", "/search", {"query": "tea", "k": 0}, 400, "InvalidInputError"),
        ("post", "/search", {"query": "   "}, 400, "InvalidInputError"),
        ("post", "/search", {"query": "tea", "mode": "magic"}, 400, "InvalidInputError"),
        ("post", "/search", {"query": "tea", "unknown": 1}, 400, "InvalidInputError"),
        ("post", "/search", {"query": "tea", "where": {"year": {"like": 1}}}, 400, "InvalidInputError"),
        ("post", "/search", {"query": "tea", "k": 1001}, 400, "InvalidInputError"),
        ("post", "/search", {"k": 3}, 400, "InvalidInputError"),
        ("get", "/search?q=tea&where=%7Bnot%20json", None, 400, "InvalidInputError"),
        ("get", "/search?q=tea&where=%5B1%5D", None, 400, "InvalidInputError"),
        ("get", "/search?q=tea&k=ten", None, 400, "InvalidInputError"),
        ("post", "/rerank", {"query": "tea", "ids": ["nope"]}, 404, "DocumentNotFoundError"),
        ("get", "/documents/nope", None, 404, "DocumentNotFoundError"),
        ("post", "/add", {"documents": [{"id": "x", "text": "y"}]}, 403, "ReadOnlyError"),
        ("post", "/delete", {"ids": ["drink/tea"]}, 403, "ReadOnlyError"),
    ],
)
def test_errors_are_json_with_a_status_per_error(client, method, path, payload, status, kind):
    response = client.request(method.upper(), path, json=payload)
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind
    assert response.json()["error"]["message"]


def test_body_and_batch_limits(seeded):
    limits = ServerLimits(max_body_bytes=2_000, max_queries=2, max_ids=2)
    small = TestClient(create_app(seeded, writable=True, limits=limits))
    big = {"documents": [{"id": "big", "text": "word " * 1_000}]}
    response = small.post("/add", json=big)
    assert response.status_code == 413 and response.json()["error"]["type"] == "RequestTooLargeError"

    def chunks():  # no Content-Length: the limit counts what arrives
        payload = json.dumps(big).encode()
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    streamed = small.post("/add", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert "big" not in seeded.ids()
    assert small.post("/search_many", json={"queries": ["a", "b", "c"]}).status_code == 400
    assert small.post("/rerank", json={"query": "a", "ids": ["1", "2", "3"]}).status_code == 400


def test_api_key_is_required_when_set(seeded):
    keyed = TestClient(create_app(seeded, api_key="s3cret"))
    refused = keyed.get("/search", params={"q": "tea"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/search", params={"q": "tea"}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert keyed.get("/search", params={"q": "tea"}, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert keyed.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert keyed.get("/health").status_code == 200 and keyed.get("/").status_code == 200


def test_writes_need_writable_and_land_in_one_transaction(writer, seeded):
    added = writer.post("/add", json={"documents": [{"id": "veg/leek", "text": "leeks and onions", "meta": {"k": 1}}]})
    assert added.json() == {"ids": ["veg/leek"], "count": 1, "total": 5}
    batch = [{"id": "veg/kale", "text": "kale"}, {"id": "veg/leek", "text": "x"}]
    duplicate = writer.post("/add", json={"documents": batch})
    assert duplicate.status_code == 409 and "veg/kale" not in seeded.ids()  # nothing of a failed batch is written
    upserted = writer.post("/upsert", json={"documents": [{"id": "veg/leek", "text": "leek soup", "meta": {"k": 2}}]})
    assert upserted.status_code == 200 and seeded.get("veg/leek").meta == {"k": 2}
    assert writer.post("/delete", json={"ids": ["veg/leek", "ghost"]}).status_code == 404
    assert "veg/leek" in seeded.ids()
    assert writer.post("/delete", json={"ids": ["veg/leek", "ghost"], "missing_ok": True}).json()["deleted"] == 1


def test_openapi_schema_lists_the_endpoints(client):
    schema = client.get("/openapi.json").json()
    assert {"/search", "/search_many", "/rerank", "/documents/{doc_id}", "/info", "/add"} <= set(schema["paths"])
    assert "query" in schema["components"]["schemas"]["SearchBody"]["properties"]


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="search-form"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "/search?" in client.get("/static/app.js").text


#: Fixed work; the bound only turns a hang into a failure.
READERS, SEARCHES_EACH, WRITES = 4, 25, 20
TIME_BOUND_S = 300.0


def test_readers_keep_answering_while_a_client_writes(seeded):
    app = create_app(seeded, writable=True)
    failures: list[str] = []
    with running(app) as url:

        def read(seed: int) -> None:
            with httpx.Client(base_url=url, timeout=TIME_BOUND_S) as http:
                for i in range(SEARCHES_EACH):
                    response = http.get("/search", params={"q": ["tea", "apple", "coffee"][(seed + i) % 3], "k": 3})
                    if response.status_code != 200:
                        failures.append(response.text)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=url, timeout=TIME_BOUND_S) as http:
            for n in range(WRITES):
                response = http.post("/add", json={"documents": [{"id": f"w{n}", "text": f"written note {n}"}]})
                assert response.status_code == 200, response.text
        for thread in threads:
            thread.join(timeout=TIME_BOUND_S)
        assert not any(t.is_alive() for t in threads), "readers did not finish within the time bound"
    assert not failures, failures[0]
    assert {f"w{n}" for n in range(WRITES)} <= set(seeded.ids())


def test_serve_command_errors_are_one_line(tmp_path):
    not_index = tmp_path / "notes.txt"
    not_index.write_text("hello")
    for args in ([str(not_index)], [str(tmp_path)], [str(tmp_path / "missing.lateint")]):
        result = subprocess.run(
            [sys.executable, "-m", "lateint_lite", "serve", *args, "--port", "0"], capture_output=True, text=True
        )
        assert result.returncode != 0
        assert result.stderr.startswith("lateint: error:") and result.stderr.count("\n") == 1, result.stderr


def test_serve_refuses_a_busy_port_and_a_missing_extra(tmp_path, capsys):
    import socket

    from lateint_lite.cli import main

    path = tmp_path / "empty.lateint"
    li.open(path, create=True).close()  # records the default model; nothing to warm up
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main(["serve", str(path), "--port", str(taken.getsockname()[1])]) == 74
    err = capsys.readouterr().err
    assert err.startswith("lateint: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1
    without_fastapi = (
        "import sys; sys.modules['fastapi'] = None; from lateint_lite.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run([sys.executable, "-c", without_fastapi, "serve", str(path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "lateint: error: lateint serve needs the serve extra: pip install 'lateint-lite[serve]'\n"


@pytest.mark.model
def test_serve_command_end_to_end_with_the_default_model(tmp_path):
    from importlib import resources

    from lateint_lite.sources import read_documents

    path = tmp_path / "sample.lateint"
    with resources.as_file(resources.files("lateint_lite") / "data" / "sample.jsonl") as sample:
        docs = list(read_documents(str(sample)))
    with li.open(path, create=True) as idx:  # the bundled model, recorded in the file
        idx.add(docs)
    process = subprocess.Popen(
        [sys.executable, "-m", "lateint_lite", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # printed once the port is open
        assert "serving" in line and "read-only" in line, line or process.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        answer = httpx.get(f"{url}search", params={"q": "why do onions make me cry", "k": 3}, timeout=120).json()
        assert "hits" in answer, answer
        hits = answer["hits"]
        assert hits[0]["id"] == "cook-3"
        assert httpx.post(f"{url}delete", json={"ids": ["cook-3"]}, timeout=60).status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert "Traceback" not in process.stderr.read()
