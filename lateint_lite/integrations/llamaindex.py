"""A LlamaIndex retriever over a lateint-lite index (the ``llamaindex`` extra: llama-index-core).

    from lateint_lite.integrations.llamaindex import LateIntRetriever
    retriever = LateIntRetriever(idx, similarity_top_k=4, mode="hybrid")
    nodes = retriever.retrieve("how do plants make sugar?")   # list[NodeWithScore]

Each node is a ``TextNode`` whose ``id_`` is the stored id, ``text`` the stored
text and ``metadata`` the stored metadata, unchanged. LlamaIndex
``MetadataFilters`` (AND of ==, !=, >, >=, <, <=, in, nin, is_empty) become the
index's ``where`` filter; anything the index cannot express is a clear error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..extras import require

require("llama_index.core", "llamaindex", "the LlamaIndex retriever")

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from ..errors import InvalidInputError
from ..index import Index

#: LlamaIndex filter operators and the index's ``where`` operators they become.
OPERATORS = {
    FilterOperator.EQ: "eq",
    FilterOperator.NE: "ne",
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
    FilterOperator.IN: "in",
    FilterOperator.NIN: "nin",
}


def where_from_filters(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """The index's ``where`` mapping for LlamaIndex metadata filters (an AND of simple conditions)."""
    if filters is None or not filters.filters:
        return None
    if filters.condition not in (None, FilterCondition.AND):
        raise InvalidInputError(f"metadata filters: only AND is supported, got {filters.condition.value!r}")
    where: dict[str, dict[str, Any]] = {}
    for item in filters.filters:
        if not isinstance(item, MetadataFilter):
            raise InvalidInputError("metadata filters: nested filter groups are not supported")
        op, value = _operator(item)
        tests = where.setdefault(item.key, {})
        if op in tests:
            raise InvalidInputError(f"metadata filters: {item.key!r} has two {op!r} conditions")
        tests[op] = value
    return where


def _operator(item: MetadataFilter) -> tuple[str, Any]:
    if item.operator == FilterOperator.IS_EMPTY:
        return "exists", False
    op = OPERATORS.get(FilterOperator(item.operator))
    if op is None:
        raise InvalidInputError(f"metadata filters: operator {item.operator.value!r} is not supported")
    return op, item.value


def node_to_record(node: BaseNode) -> dict[str, Any]:
    """An index record from a LlamaIndex node: its id, text content and metadata."""
    return {"id": node.node_id, "text": node.get_content(), "meta": dict(node.metadata)}


class LateIntRetriever(BaseRetriever):
    """Late-interaction (MaxSim) retrieval from a lateint-lite index, as ``NodeWithScore`` lists.

    ``search_options`` are any :meth:`lateint_lite.Index.search` options (mode, where,
    fusion, exact, ...); ``filters`` (LlamaIndex MetadataFilters) are ANDed with ``where``.
    """

    def __init__(
        self,
        index: Index,
        *,
        similarity_top_k: int = 4,
        filters: MetadataFilters | None = None,
        callback_manager: CallbackManager | None = None,
        **search_options: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.index = index
        self.similarity_top_k = similarity_top_k
        self.search_options = dict(search_options)
        converted = where_from_filters(filters)
        if converted:
            where = dict(self.search_options.get("where") or {})
            clash = sorted(set(where) & set(converted))
            if clash:
                raise InvalidInputError(f"key {clash[0]!r} is filtered by both where and filters")
            self.search_options["where"] = {**where, **converted}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(query_bundle.query_str, k=self.similarity_top_k, **self.search_options)
        return [
            NodeWithScore(node=TextNode(id_=hit.id, text=hit.text, metadata=dict(hit.meta)), score=hit.score)
            for hit in hits
        ]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # the search is CPU-bound Numba/SQLite work: keep it off the event loop
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def add_nodes(self, nodes: Iterable[BaseNode]) -> list[str]:
        """Upsert LlamaIndex nodes (id, text content, metadata) in one transaction."""
        return self.index.upsert([node_to_record(node) for node in nodes])


__all__ = ["LateIntRetriever", "node_to_record", "where_from_filters"]
