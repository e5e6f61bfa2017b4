"""LangChain and LlamaIndex retrievers against the real packages and a real index (fake encoder)."""

from __future__ import annotations

import asyncio

import pytest

import lateint_lite as li

DOCS = [
    {
        "id": "p1",
        "text": "plants turn sunlight and water into sugar",
        "meta": {"topic": "bio", "year": 2019},
    },
    {"id": "p2", "text": "chlorophyll absorbs red and blue light in plants", "meta": {"topic": "bio", "year": 2022}},
    {"id": "s1", "text": "massive stars collapse into black holes", "meta": {"topic": "astro", "year": 2021}},
    {
        "id": "s2",
        "text": "light from distant stars is red shifted",
        "meta": {"topic": "astro", "year": 2023, "tags": ["x"]},
    },
]


@pytest.fixture
def seeded(fake_index):
    fake_index.add(DOCS)
    return fake_index


# -- LangChain ------------------------------------------------------------------------------


def test_langchain_retriever_returns_documents_with_metadata(seeded):
    langchain = pytest.importorskip("lateint_lite.integrations.langchain", reason="langchain extra not installed")
    from langchain_core.retrievers import BaseRetriever

    retriever = langchain.LateIntRetriever(index=seeded, k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("red light stars")
    hits = seeded.search("red light stars", k=2)
    assert [d.id for d in docs] == [h.id for h in hits]
    first = docs[0]
    stored = next(d for d in DOCS if d["id"] == hits[0].id)
    assert first.page_content == stored["text"]
    assert {k: v for k, v in first.metadata.items() if k != "lateint"} == stored["meta"]
    assert first.metadata["lateint"] == {"id": hits[0].id, "score": hits[0].score, "rank": 1}


def test_langchain_filters_overrides_and_async(seeded):
    langchain = pytest.importorskip("lateint_lite.integrations.langchain", reason="langchain extra not installed")

    retriever = langchain.LateIntRetriever(index=seeded, k=4, search_options={"where": {"topic": "bio"}})
    assert {d.id for d in retriever.invoke("light")} == {"p1", "p2"}
    assert [d.id for d in retriever.invoke("light", k=1, where={"year": {"gte": 2023}})] == ["s2"]
    assert [d.id for d in retriever.invoke("light", mode="bm25", where=None)] == [
        h.id for h in seeded.search("light", k=4, mode="bm25")
    ]
    async_docs = asyncio.run(retriever.ainvoke("light"))
    assert [d.id for d in async_docs] == [d.id for d in retriever.invoke("light")]
    with pytest.raises(li.InvalidInputError):
        retriever.invoke("light", where={"year": {"like": 1}})


def test_langchain_documents_round_trip(seeded):
    langchain = pytest.importorskip("lateint_lite.integrations.langchain", reason="langchain extra not installed")
    from langchain_core.documents import Document

    retriever = langchain.LateIntRetriever(index=seeded, k=1)
    meta = {"source": "notes/moon.md", "page": 3, "draft": False, "authors": ["a", "b"], "score": "user field"}
    retriever.add_documents([Document(page_content="the moon raises ocean tides", metadata=meta)], ids=["m1"])
    found = retriever.invoke("moon tides")[0]
    assert found.id == "m1" and found.page_content == "the moon raises ocean tides"
    assert {k: v for k, v in found.metadata.items() if k != "lateint"} == meta
    retriever.add_documents([found])  # a retrieved Document writes back as itself (upsert by its id)
    assert seeded.get("m1").meta == meta
    with pytest.raises(li.InvalidInputError, match="needs an id"):
        retriever.add_documents([Document(page_content="no id")])


# -- LlamaIndex -----------------------------------------------------------------------------


def test_llamaindex_retriever_returns_nodes_with_scores(seeded):
    llamaindex = pytest.importorskip("lateint_lite.integrations.llamaindex", reason="llamaindex extra not installed")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    retriever = llamaindex.LateIntRetriever(seeded, similarity_top_k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("red light stars")
    hits = seeded.search("red light stars", k=3)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [(n.node.node_id, n.score) for n in nodes] == [(h.id, h.score) for h in hits]
    assert [n.node.metadata for n in nodes] == [h.meta for h in hits]
    assert [n.node.get_content() for n in nodes] == [h.text for h in hits]
    assert [n.node.node_id for n in asyncio.run(retriever.aretrieve("red light stars"))] == [h.id for h in hits]


def test_llamaindex_metadata_filters_become_where(seeded):
    llamaindex = pytest.importorskip("lateint_lite.integrations.llamaindex", reason="llamaindex extra not installed")
    from llama_index.core.vector_stores.types import FilterCondition, MetadataFilter, MetadataFilters

    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value="astro"),
            MetadataFilter(key="year", value=2022, operator=">="),
            MetadataFilter(key="year", value=2024, operator="<"),
        ]
    )
    assert llamaindex.where_from_filters(filters) == {"topic": {"eq": "astro"}, "year": {"gte": 2022, "lt": 2024}}
    retriever = llamaindex.LateIntRetriever(seeded, similarity_top_k=4, filters=filters)
    assert [n.node.node_id for n in retriever.retrieve("stars")] == ["s2"]
    listed = MetadataFilters(filters=[MetadataFilter(key="topic", value=["bio"], operator="in")])
    assert {n.node.node_id for n in llamaindex.LateIntRetriever(seeded, filters=listed).retrieve("light")} == {
        "p1",
        "p2",
    }

    either = MetadataFilters(filters=[MetadataFilter(key="topic", value="bio")], condition=FilterCondition.OR)
    with pytest.raises(li.InvalidInputError, match="only AND"):
        llamaindex.LateIntRetriever(seeded, filters=either)
    text_match = MetadataFilters(filters=[MetadataFilter(key="topic", value="bi", operator="text_match")])
    with pytest.raises(li.InvalidInputError, match="not supported"):
        llamaindex.LateIntRetriever(seeded, filters=text_match)


def test_llamaindex_nodes_round_trip(seeded):
    llamaindex = pytest.importorskip("lateint_lite.integrations.llamaindex", reason="llamaindex extra not installed")
    from llama_index.core.schema import TextNode

    retriever = llamaindex.LateIntRetriever(seeded, similarity_top_k=1)
    meta = {"file_path": "docs/tides.txt", "page": 7, "reviewed": True}
    retriever.add_nodes([TextNode(id_="t1", text="ocean tides follow the moon", metadata=meta)])
    node = retriever.retrieve("moon tides")[0].node
    assert (node.node_id, node.get_content(), node.metadata) == ("t1", "ocean tides follow the moon", meta)


@pytest.mark.model
def test_readme_retriever_examples_run(tmp_path, monkeypatch):
    """The LangChain and LlamaIndex examples in README.md, executed as written, in order."""
    from pathlib import Path

    pytest.importorskip("lateint_lite.integrations.langchain", reason="langchain extra not installed")
    pytest.importorskip("lateint_lite.integrations.llamaindex", reason="llamaindex extra not installed")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    examples = {name: next(b for b in blocks if b.startswith(f"# {name}:")) for name in ("LangChain", "LlamaIndex")}
    monkeypatch.chdir(tmp_path)
    langchain: dict = {}
    exec(compile(examples["LangChain"], "README.md", "exec"), langchain)
    assert langchain["docs"][0].id == "t1" and langchain["docs"][0].metadata["topic"] == "sea"
    llamaindex: dict = {}
    exec(compile(examples["LlamaIndex"], "README.md", "exec"), llamaindex)
    assert [n.node.node_id for n in llamaindex["nodes"]] == ["b1"]
