"""A LangChain retriever over a lateint-lite index (the ``langchain`` extra: langchain-core).

    from lateint_lite.integrations.langchain import LateIntRetriever
    retriever = LateIntRetriever(index=idx, k=4, search_options={"mode": "hybrid"})
    docs = retriever.invoke("how do plants make sugar?", where={"topic": "bio"})

Each LangChain ``Document`` carries the stored text as ``page_content``, the
stored id as ``id``, the stored metadata unchanged as ``metadata``, plus one key
``metadata["lateint"] = {"id", "score", "rank"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from ..extras import require

require("langchain_core", "langchain", "the LangChain retriever")

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from ..documents import Hit
from ..errors import InvalidInputError
from ..index import Index
from ..index import open as open_index

#: The metadata key that carries lateint's own fields; stored metadata is never overwritten.
RESULT_KEY = "lateint"


def hit_to_document(hit: Hit) -> Document:
    """A LangChain Document for one hit: stored text, id and metadata, plus ``metadata["lateint"]``."""
    return Document(
        id=hit.id,
        page_content=hit.text,
        metadata={**hit.meta, RESULT_KEY: {"id": hit.id, "score": hit.score, "rank": hit.rank}},
    )


def document_to_record(document: Document, doc_id: object | None = None) -> dict[str, Any]:
    """An index record from a LangChain Document (its ``id``, or ``doc_id``; the ``lateint`` key is dropped)."""
    chosen = doc_id if doc_id is not None else document.id
    if chosen is None:
        raise InvalidInputError("a LangChain Document needs an id (set document.id or pass ids=...)")
    meta = {k: v for k, v in (document.metadata or {}).items() if k != RESULT_KEY}
    return {"id": chosen, "text": document.page_content, "meta": meta}


class LateIntRetriever(BaseRetriever):
    """Late-interaction (MaxSim) retrieval from a lateint-lite index.

    ``k`` and ``search_options`` (any :meth:`lateint_lite.Index.search` option) are the
    defaults; ``invoke(query, k=..., where=..., ...)`` overrides them per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = 4
    search_options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str, *, k: int = 4, readonly: bool = True, **search_options: Any) -> LateIntRetriever:
        """Open the index at ``path`` (read-only by default); close it with ``retriever.index.close()``."""
        return cls(index=open_index(path, readonly=readonly), k=k, search_options=search_options)

    def search(self, query: str, **overrides: Any) -> list[Document]:
        """The hits for ``query`` as Documents, with per-call overrides of ``k`` and the search options."""
        options = {**self.search_options, **overrides}
        k = options.pop("k", self.k)
        return [hit_to_document(hit) for hit in self.index.search(query, k=k, **options)]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        return self.search(query, **overrides)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        # the search is CPU-bound Numba/SQLite work: keep it off the event loop
        return await asyncio.to_thread(self.search, query, **overrides)

    def add_documents(self, documents: Iterable[Document], ids: Sequence[object] | None = None) -> list[str]:
        """Upsert LangChain Documents (ids from ``ids`` or each ``document.id``) in one transaction."""
        docs = list(documents)
        if ids is not None and len(ids) != len(docs):
            raise InvalidInputError(f"{len(ids)} ids for {len(docs)} documents")
        chosen = list(ids) if ids is not None else [None] * len(docs)
        return self.index.upsert([document_to_record(d, i) for d, i in zip(docs, chosen, strict=True)])


__all__ = ["LateIntRetriever", "document_to_record", "hit_to_document"]
