"""The ASGI application: JSON endpoints over one open :class:`~lateint_lite.Index`, and the search page.

FastAPI because its OpenAPI schema and request validation come from the typed
request models below (pydantic), so ``/openapi.json`` and ``/docs`` always match
the code. Endpoints are plain functions: FastAPI runs them in its worker
threads, each with its own SQLite connection (the Index keeps one per thread), so
searches keep answering while a write commits (WAL).
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .._version import __version__
from ..documents import Hit
from ..errors import InvalidInputError, LateIntError, ReadOnlyError
from ..filters import where_from_json
from ..index import Index
from ..results import DEFAULT_FIELDS, HIT_FIELDS, hit_record, parse_fields
from .http_errors import UnauthorizedError, error_headers, error_payload, status_of
from .limits import BodySizeLimit, ServerLimits

Mode = Literal["maxsim", "bm25", "hybrid", "pooled"]
Fusion = Literal["score", "rrf"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchOptionsBody(_Strict):
    """Options shared by /search and /search_many (see ``Index.search``)."""

    k: int = Field(10, description="number of hits")
    mode: Mode = "maxsim"
    where: dict[str, Any] | None = Field(None, description="metadata filter, as in Index.search")
    exact: bool = Field(False, description="exhaustive MaxSim instead of PLAID pruning")
    fusion: Fusion = "score"
    highlight: bool = Field(True, description="find what the query matched (snippet window, highlights)")
    ncells: int | None = None
    threshold: float | None = None
    ndocs: int | None = None
    fields: list[str] = Field(list(DEFAULT_FIELDS), description=f"hit fields among {', '.join(HIT_FIELDS)}")


class SearchBody(SearchOptionsBody):
    query: str


class SearchManyBody(SearchOptionsBody):
    queries: list[str]


class RerankBody(_Strict):
    query: str
    ids: list[str]
    k: int | None = None
    fields: list[str] = list(DEFAULT_FIELDS)


class DocumentBody(_Strict):
    id: str | int
    text: str
    meta: dict[str, Any] | None = None
    vectors: list[list[float]] | None = Field(None, description="precomputed token vectors (n, dim)")


class WriteBody(_Strict):
    documents: list[DocumentBody]


class DeleteBody(_Strict):
    ids: list[str | int]
    missing_ok: bool = False


def create_app(
    index: Index, *, writable: bool = False, api_key: str | None = None, limits: ServerLimits | None = None
) -> FastAPI:
    """An ASGI app serving ``index`` (opened and closed by the caller).

    Writes (/add, /upsert, /delete) answer 403 unless ``writable``. With ``api_key``
    every /api-style endpoint wants ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
    (compared in constant time); the page, its files and /health stay open.
    """
    bounds = limits or ServerLimits()
    # no /docs or /redoc: their pages load scripts from a CDN, and this server must work offline
    app = FastAPI(
        title="lateint-lite",
        version=__version__,
        description="Late-interaction search over one index file.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=bounds.max_body_bytes)
    _install_error_handlers(app)
    guard = [Depends(_key_check(api_key))]
    _add_read_routes(app, index, bounds, guard, writable)
    _add_write_routes(app, index, guard, writable)
    _add_page(app)
    return app


def _key_check(api_key: str | None) -> Any:
    """A dependency refusing requests without the key (none when the server has no key)."""
    expected = api_key.encode() if api_key else None

    def check(request: Request) -> None:
        if expected is None:
            return
        presented = request.headers.get("x-api-key") or ""
        authorization = request.headers.get("authorization") or ""
        if authorization[:7].lower() == "bearer ":
            presented = authorization[7:]
        if not hmac.compare_digest(presented.encode(), expected):
            raise UnauthorizedError("missing or wrong API key (send Authorization: Bearer KEY or X-API-Key: KEY)")

    return check


def _install_error_handlers(app: FastAPI) -> None:
    async def on_lateint_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LateIntError)
        return JSONResponse(
            error_payload(type(exc).__name__, str(exc)), status_code=status_of(exc), headers=error_headers(exc)
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(error_payload(InvalidInputError.__name__, _validation_message(exc)), status_code=400)

    app.add_exception_handler(LateIntError, on_lateint_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _validation_message(exc: RequestValidationError) -> str:
    """One line per problem: where (body.k, query.q) and what pydantic said."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _bounded_k(k: int | None, limits: ServerLimits) -> int | None:
    if k is not None and k > limits.max_k:
        raise InvalidInputError(f"k must be at most {limits.max_k} on this server, got {k}")
    return k


def _search_kwargs(body: SearchOptionsBody, limits: ServerLimits) -> dict[str, Any]:
    _bounded_k(body.k, limits)
    return {
        "k": body.k,
        "mode": body.mode,
        "where": body.where,
        "exact": body.exact,
        "fusion": body.fusion,
        "highlight": body.highlight,
        "ncells": body.ncells,
        "threshold": body.threshold,
        "ndocs": body.ndocs,
    }


def _hits(hits: list[Hit], fields: list[str]) -> list[dict[str, Any]]:
    chosen = parse_fields(fields)
    return [hit_record(hit, chosen) for hit in hits]


def _add_read_routes(app: FastAPI, index: Index, limits: ServerLimits, guard: list[Any], writable: bool) -> None:
    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: answers without touching the index."""
        return {"status": "ok"}

    @app.get("/info", dependencies=guard, tags=["meta"])
    def info() -> dict[str, Any]:
        """Counts, sizes, model and codec of the index, and this server's limits."""
        return {**index.info().to_dict(), "writable": writable, "limits": limits.to_dict(), "server": __version__}

    @app.get("/search", dependencies=guard, tags=["search"])
    def search_get(
        q: str = Query(..., description="query text"),
        k: int = 10,
        mode: Mode = "maxsim",
        where: str | None = Query(None, description='metadata filter as JSON, e.g. {"lang": "en"}'),
        exact: bool = False,
        fusion: Fusion = "score",
        highlight: bool = True,
        ncells: int | None = None,
        threshold: float | None = None,
        ndocs: int | None = None,
        fields: str = Query(",".join(DEFAULT_FIELDS), description=f"comma-separated, among {', '.join(HIT_FIELDS)}"),
    ) -> dict[str, Any]:
        """The k best documents for ``q`` (the query-string form of POST /search)."""
        body = SearchBody(
            query=q, k=k, mode=mode, where=where_from_json(where), exact=exact, fusion=fusion, highlight=highlight,
            ncells=ncells, threshold=threshold, ndocs=ndocs, fields=[f for f in fields.split(",") if f.strip()],
        )  # fmt: skip
        return search_post(body)

    @app.post("/search", dependencies=guard, tags=["search"])
    def search_post(body: SearchBody) -> dict[str, Any]:
        """The k best documents for ``query``: every mode, filters, PLAID overrides, chosen fields."""
        hits = index.search(body.query, **_search_kwargs(body, limits))
        return {"query": body.query, "hits": _hits(hits, body.fields)}

    @app.post("/search_many", dependencies=guard, tags=["search"])
    def search_many(body: SearchManyBody) -> dict[str, Any]:
        """:http:post:`/search` for many queries, encoded in one batch; one hit list per query."""
        if len(body.queries) > limits.max_queries:
            raise InvalidInputError(f"at most {limits.max_queries} queries per request, got {len(body.queries)}")
        results = index.search_many(body.queries, **_search_kwargs(body, limits))
        pairs = zip(body.queries, results, strict=True)
        return {"results": [{"query": q, "hits": _hits(h, body.fields)} for q, h in pairs]}

    @app.post("/rerank", dependencies=guard, tags=["search"])
    def rerank(body: RerankBody) -> dict[str, Any]:
        """Exact MaxSim of ``query`` against the given documents, best first."""
        if len(body.ids) > limits.max_ids:
            raise InvalidInputError(f"at most {limits.max_ids} ids per rerank, got {len(body.ids)}")
        hits = index.rerank(body.query, body.ids, k=_bounded_k(body.k, limits))
        return {"query": body.query, "hits": _hits(hits, body.fields)}

    @app.get("/documents/{doc_id:path}", dependencies=guard, tags=["documents"])
    def get_document(doc_id: str) -> dict[str, Any]:
        """One stored document: id, text, metadata, token count."""
        doc = index.get(doc_id)
        return {"id": doc.id, "text": doc.text, "meta": doc.meta, "n_tokens": doc.n_tokens}

    @app.get("/ids", dependencies=guard, tags=["documents"])
    def ids(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        """Document ids in insertion order, a page at a time."""
        every = index.ids()
        return {"total": len(every), "offset": offset, "ids": every[offset : offset + limit]}


def _add_write_routes(app: FastAPI, index: Index, guard: list[Any], writable: bool) -> None:
    def require_writable() -> None:
        if not writable:
            raise ReadOnlyError("this server is read-only (start it with lateint serve --writable)")

    writes = [*guard, Depends(require_writable)]

    def documents_of(body: WriteBody) -> list[dict[str, Any]]:
        return [doc.model_dump(exclude_none=True) for doc in body.documents]

    @app.post("/add", dependencies=writes, tags=["write"])
    def add(body: WriteBody) -> dict[str, Any]:
        """Add documents in one transaction (existing ids are an error: 409)."""
        written = index.add(documents_of(body))
        return {"ids": written, "count": len(written), "total": len(index)}

    @app.post("/upsert", dependencies=writes, tags=["write"])
    def upsert(body: WriteBody) -> dict[str, Any]:
        """Add or replace documents in one transaction."""
        written = index.upsert(documents_of(body))
        return {"ids": written, "count": len(written), "total": len(index)}

    @app.post("/delete", dependencies=writes, tags=["write"])
    def delete(body: DeleteBody) -> dict[str, Any]:
        """Delete documents by id in one transaction (unknown ids: 404 unless missing_ok)."""
        removed = index.delete(body.ids, missing_ok=body.missing_ok)
        return {"deleted": removed, "total": len(index)}


def _add_page(app: FastAPI) -> None:
    static = resources.files("lateint_lite.server") / "static"
    folder = str(static)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(f"{folder}/index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=folder), name="static")
