"""Text to token vectors: the Encoder protocol and the ONNX implementation.

The ONNX encoder is driven entirely by a :class:`~lateint_lite.manifest.ModelManifest`:
max lengths, prefixes, ColBERT-style markers, [MASK] query expansion and the
document skiplist. Batches are formed from length-sorted texts so padding stays
small; padding positions never reach the output.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .config import MAX_PASSAGES
from .errors import InvalidInputError, ModelError
from .manifest import ModelManifest, load_manifest

ProgressCallback = Callable[[int], None]
log = logging.getLogger("lateint_lite")
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: ASCII punctuation, one token each in BERT-style vocabularies (ColBERT's skiplist).
PUNCTUATION: tuple[str, ...] = tuple(string.punctuation)

#: Text is cut to ``max_length`` x this many characters before tokenization (the tokenizer
#: truncates to ``max_length`` tokens anyway): a 10 MB text was tokenized whole, 1.7 GB peak RSS.
#: WordPiece turns a word of over 100 characters into one [UNK]; English averages ~4 per token.
MAX_CHARS_PER_TOKEN = 64


#: Shortest passage window one may choose (tokens, special tokens included).
MIN_PASSAGE_LENGTH = 16
#: Longest passage window for a model whose manifest does not say how long its inputs may be.
MAX_PASSAGE_LENGTH = 8192


def with_passage_window(
    manifest: ModelManifest, length: int | None, overlap: int | None, max_passages: int | None = None
) -> ModelManifest:
    """The manifest with its document window replaced: ``length`` tokens per passage (None: the
    model's), ``overlap`` tokens shared by consecutive passages (None: the model's, or length / 4
    when the length is chosen), at most ``max_passages`` passages per document (None: the
    model's; the rest of a longer document is not indexed). Checked against what the model takes."""
    if max_passages is not None:
        if isinstance(max_passages, bool) or not isinstance(max_passages, int) or not 1 <= max_passages <= MAX_PASSAGES:
            raise InvalidInputError(f"max_passages must be an integer from 1 to {MAX_PASSAGES}, got {max_passages!r}")
        document = dataclasses.replace(manifest.document, max_passages=max_passages)
        manifest = dataclasses.replace(manifest, document=document)
    if length is None and overlap is None:
        return manifest
    document = manifest.document
    limit = manifest.max_positions or MAX_PASSAGE_LENGTH
    chosen = document.max_length if length is None else length
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not MIN_PASSAGE_LENGTH <= chosen <= limit:
        raise InvalidInputError(
            f"passage_length must be an integer from {MIN_PASSAGE_LENGTH} to {limit} for model {manifest.name!r}, "
            f"got {chosen!r}"
        )
    shared = (document.overlap if length is None else chosen // 4) if overlap is None else overlap
    if isinstance(shared, bool) or not isinstance(shared, int) or not 0 <= shared <= chosen // 2:
        raise InvalidInputError(f"passage_overlap must be an integer from 0 to {chosen // 2}, got {shared!r}")
    return dataclasses.replace(manifest, document=dataclasses.replace(document, max_length=chosen, overlap=shared))


def resolve_skiplist(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """None (model default), "punctuation", "none", or an explicit list of tokens."""
    if value is None:
        return None
    if isinstance(value, str):
        if value == "punctuation":
            return PUNCTUATION
        if value == "none":
            return ()
        raise InvalidInputError(f"skiplist must be 'punctuation', 'none' or a list of tokens, got {value!r}")
    tokens = tuple(value)
    if not all(isinstance(t, str) and t for t in tokens):
        raise InvalidInputError("skiplist tokens must be non-empty strings")
    return tokens


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into L2-normalized float32 token matrices.

    Optional: ``encode_document_passages(texts)`` (each document's passages' matrices, so long
    documents are scored by their best passage) and ``document_token_spans(texts)`` (character
    spans of the document tokens, to highlight matches; when it also takes ``through=`` (per
    text, the last passage wanted), a search asks only for the spans up to each hit's best
    passage).
    """

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """Identity of the weights (sha256 of the ONNX file for real models)."""
        ...

    @property
    def dim(self) -> int: ...

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: ProgressCallback | None = None
    ) -> list[np.ndarray]: ...

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]: ...


def encode_passages(
    encoder: Encoder, texts: Sequence[str], names: Sequence[str] | None = None
) -> list[list[np.ndarray]]:
    """Each document's passages' token matrices: from ``encode_document_passages`` where the
    encoder has it (long documents split into windows), else one passage per document.
    ``names`` (the documents' ids) name a document in the encoder's warnings where it takes them,
    and in the error when the encoder gives a document no passage."""
    split = getattr(encoder, "encode_document_passages", None)
    if split is None:
        return [[matrix] for matrix in encoder.encode_documents(list(texts))]
    if names is not None and "names" in inspect.signature(split).parameters:
        passages = [list(parts) for parts in split(list(texts), names=list(names))]
    else:
        passages = [list(parts) for parts in split(list(texts))]
    empty = next((i for i, parts in enumerate(passages) if not parts), None)
    if empty is not None:
        name = repr(names[empty]) if names is not None and empty < len(names) else f"document {empty}"
        raise InvalidInputError(f"encoder output for {name}: no passages")
    return passages


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Row-normalize in float32; all-zero rows stay zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches over items sorted by length (longest first)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class OnnxEncoder:
    """Per-token encoder over an ONNX graph and a ``tokenizers`` tokenizer.

    Two onnxruntime sessions share the weights file: queries run on one session
    using all ``threads`` intra-op threads (lowest latency for one short text);
    documents run on a single-threaded session fed by ``threads`` worker threads
    (measured 38.8 vs 31.8 docs/s on 2 cores, see docs/ARCHITECTURE.md).
    """

    def __init__(
        self,
        manifest: ModelManifest,
        *,
        threads: int | None = None,
        verify: bool = True,
        skiplist: Sequence[str] | None = None,
        passage_length: int | None = None,
        passage_overlap: int | None = None,
        max_passages: int | None = None,
    ) -> None:
        """``skiplist`` (document tokens to drop) overrides the manifest's when given, and so do
        ``passage_length`` / ``passage_overlap`` / ``max_passages`` (the document window, see
        :func:`with_passage_window`)."""
        from tokenizers import Tokenizer

        manifest = with_passage_window(manifest, passage_length, passage_overlap, max_passages)
        if verify:
            manifest.verify_files()
        self.manifest = manifest
        self.threads = max(1, threads or os.cpu_count() or 1)
        try:
            self._query_tokenizer = Tokenizer.from_file(str(manifest.tokenizer_path))
            self._doc_tokenizer = Tokenizer.from_file(str(manifest.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(f"{manifest.tokenizer_path}: cannot load tokenizer: {exc}") from exc
        self._query_marker = self._token_id(manifest.query.marker)
        self._doc_marker = self._token_id(manifest.document.marker)
        self._mask_id = self._token_id(manifest.query.mask_token) if manifest.query.expand_to else None
        self._pad_id = self._token_id("[PAD]", required=False) or 0
        skip = manifest.document.skiplist if skiplist is None else tuple(skiplist)
        self.skiplist: tuple[str, ...] = tuple(skip)
        self._skip_ids = np.array(
            sorted({i for t in skip if (i := self._token_id(t, required=False)) is not None}), dtype=np.int64
        )
        self._configure(self._query_tokenizer, manifest.query.max_length, self._query_marker)
        self._configure(self._doc_tokenizer, manifest.document.max_length, self._doc_marker, manifest.document.overlap)
        self._query_session = self._open_session(self.threads)
        self._doc_session: object | None = None
        self._session_lock = threading.Lock()
        self._inputs = [i.name for i in self._query_session.get_inputs()]
        unknown = [n for n in self._inputs if n not in KNOWN_INPUTS]
        if unknown or "input_ids" not in self._inputs:
            raise ModelError(f"{manifest.model_path}: unsupported ONNX inputs {self._inputs}")
        if manifest.output not in [o.name for o in self._query_session.get_outputs()]:
            raise ModelError(f"{manifest.model_path}: no output named {manifest.output!r}")

    @classmethod
    def from_model(cls, model: str | os.PathLike[str] | None = None, **kwargs: Any) -> OnnxEncoder:
        """Load a model by bundled name or folder path (None: the default model)."""
        return cls(load_manifest(None if model is None else str(model)), **kwargs)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def fingerprint(self) -> str:
        return self.manifest.model.sha256

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: ProgressCallback | None = None
    ) -> list[np.ndarray]:
        """Token matrices for documents, in input order: the tokens of every passage of
        :meth:`encode_document_passages`, in order."""
        passages = self.encode_document_passages(texts, batch_size=batch_size, progress=progress)
        return [parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in passages]

    def encode_document_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 16,
        progress: ProgressCallback | None = None,
        names: Sequence[str] | None = None,
    ) -> list[list[np.ndarray]]:
        """Each document's passages' token matrices, in input order. A document longer than the
        model's document length is split into overlapping windows (``document.overlap`` tokens
        repeated), each encoded with its own special tokens and marker; a shorter one is one passage.
        A document cut at ``max_passages`` is logged as a warning, by its name in ``names`` if given."""
        windows = self._passages(texts, warn=True, names=names)
        ids = [self._with_marker(np.array(w.ids, dtype=np.int64), self._doc_marker) for _, w in windows]
        attend = [np.ones(len(i), dtype=np.int64) for i in ids]
        vectors = self._run(self._document_session(), ids, attend, batch_size, self.threads, None)
        if self._skip_ids.size:
            vectors = [self._drop_skipped(v, i) for v, i in zip(vectors, ids, strict=True)]
        per_doc: list[list[np.ndarray]] = [[] for _ in texts]
        for (owner, _), matrix in zip(windows, vectors, strict=True):
            per_doc[owner].append(matrix)
        if progress is not None:
            progress(len(texts))
        return per_doc

    def _passages(
        self,
        texts: Sequence[str],
        *,
        warn: bool = False,
        through: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
    ) -> list[tuple[int, Any]]:
        """(document index, tokenizer encoding) of every passage window, documents in order;
        ``warn``: log each document cut at ``max_passages`` (when encoding it, not each time a
        search explains a hit in it), by its name in ``names`` when given; ``through``: per text,
        the last window wanted (the text is tokenized only as far as one window beyond it needs)."""
        config = self.manifest.document
        per_window = config.max_length - config.overlap
        if through is None:  # every window up to max_passages
            lasts, margin = [config.max_passages - 1] * len(texts), 0
        else:  # one window of text beyond the last wanted, so that window's tokens are the full text's
            lasts, margin = [int(p) for p in through], 1
        caps = [
            MAX_CHARS_PER_TOKEN * (config.max_length + min(last + margin, config.max_passages - 1) * per_window)
            for last in lasts
        ]
        encodings = self._doc_tokenizer.encode_batch(
            [config.prefix + t[:cap] for t, cap in zip(texts, caps, strict=True)]
        )
        windows: list[tuple[int, Any]] = []
        for owner, encoding in enumerate(encodings):
            parts = [encoding, *encoding.overflowing]
            if warn and len(parts) > config.max_passages:
                name = repr(names[owner]) if names is not None and owner < len(names) else "a document"
                log.warning(
                    "%s (%d characters) was cut at %d passages of %d tokens; the rest of it is not indexed "
                    "(a new index made with a larger max_passages, e.g. lateint add --max-passages, keeps more)",
                    name, len(texts[owner]), config.max_passages, config.max_length,
                )  # fmt: skip
            windows.extend((owner, part) for part in parts[: lasts[owner] + 1])
        return windows

    def document_token_spans(
        self, texts: Sequence[str], *, through: Sequence[int] | None = None
    ) -> list[list[tuple[int, int] | None]]:
        """For each text, the character spans of the token vectors :meth:`encode_documents` returns
        for it, in the same order (None for special tokens and markers); to highlight matches.
        ``through`` (per text, a passage index) stops after that passage's tokens: a hit in the
        third passage of a long file does not tokenize the rest of it."""
        shift = len(self.manifest.document.prefix)
        spans: list[list[tuple[int, int] | None]] = [[] for _ in texts]
        for owner, window in self._passages(texts, through=through):
            spans[owner].extend(self._spans(window, shift))
        return spans

    def _spans(self, encoding: Any, shift: int) -> list[tuple[int, int] | None]:
        ids = self._with_marker(np.array(encoding.ids, dtype=np.int64), self._doc_marker)
        spans: list[tuple[int, int] | None] = [
            None if special or end <= shift else (max(start - shift, 0), end - shift)
            for (start, end), special in zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
        ]
        if self._doc_marker is not None and spans:
            spans.insert(1, None)
        if self._skip_ids.size:
            spans = [s for s, k in zip(spans, self._kept(ids), strict=True) if k]
        return spans

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Token matrices for queries, expanded with [MASK] when the manifest asks."""
        inputs = self._query_inputs(texts)
        ids = [i for i, _, _ in inputs]
        attend = [a for _, a, _ in inputs]
        return self._run(self._query_session, ids, attend, batch_size, 1, None, keep_unattended=True)

    def query_text_rows(self, text: str) -> np.ndarray:
        """Which rows of :meth:`encode_queries`' matrix for ``text`` stand for its own words (not
        [CLS]/[SEP], the marker or [MASK] expansion); highlights are explained by these only."""
        return self._query_inputs([text])[0][2]

    def _query_inputs(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(token ids, attention mask, which positions are the text's own words) of each query:
        the marker after [CLS], then [MASK] up to ``expand_to`` (attended or not, per manifest)."""
        cfg = self.manifest.query
        cap = cfg.max_length * MAX_CHARS_PER_TOKEN
        shift = len(cfg.prefix)
        inputs = []
        for encoding in self._query_tokenizer.encode_batch([cfg.prefix + t[:cap] for t in texts]):
            ids = self._with_marker(np.array(encoding.ids, dtype=np.int64), self._query_marker)
            pairs = zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
            words = [not special and end > shift for (_, end), special in pairs]
            if self._query_marker is not None and words:
                words.insert(1, False)
            attend = np.ones(len(ids), dtype=np.int64)
            pad = max(cfg.expand_to - len(ids), 0) if cfg.expand_to and self._mask_id is not None else 0
            if pad:
                ids = np.concatenate([ids, np.full(pad, self._mask_id, dtype=np.int64)])
                attend = np.concatenate([attend, np.full(pad, int(cfg.attend_to_expansion), dtype=np.int64)])
                words += [False] * pad
            inputs.append((ids, attend, np.array(words, dtype=bool)))
        return inputs

    def _open_session(self, intra_op_threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(
                str(self.manifest.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelError(f"{self.manifest.model_path}: cannot load ONNX model: {exc}") from exc

    def _document_session(self) -> Any:
        if self.threads == 1:
            return self._query_session
        with self._session_lock:
            if self._doc_session is None:
                self._doc_session = self._open_session(1)
            return self._doc_session

    def _token_id(self, token: str | None, *, required: bool = True) -> int | None:
        if token is None:
            return None
        token_id = self._doc_tokenizer.token_to_id(token)
        if token_id is None and required:
            raise ModelError(f"token {token!r} from the manifest is not in the tokenizer's vocabulary")
        return token_id

    @staticmethod
    def _configure(tokenizer: Any, max_length: int, marker: int | None, overlap: int = 0) -> None:
        """No padding; truncation to ``max_length`` with the marker's room kept; a text beyond it
        continues in overflowing windows that repeat ``overlap`` tokens (document passages)."""
        tokenizer.no_padding()
        room = max_length - (1 if marker is not None else 0)
        tokenizer.enable_truncation(max_length=room, stride=min(overlap, max(room - 3, 0)))

    @staticmethod
    def _with_marker(ids: np.ndarray, marker: int | None) -> np.ndarray:
        if marker is None or ids.size == 0:
            return ids
        return np.concatenate([ids[:1], [marker], ids[1:]]).astype(np.int64)

    def _kept(self, ids: np.ndarray) -> np.ndarray:
        """Which token positions survive the skiplist (the first one when none would): the one
        rule for vectors and for their spans, which must line up."""
        keep = ~np.isin(ids, self._skip_ids)
        if not keep.any():
            keep[:1] = True
        return keep

    def _drop_skipped(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return vectors[self._kept(ids[: len(vectors)])]

    def _run(
        self,
        session: Any,
        ids: list[np.ndarray],
        attend: list[np.ndarray],
        batch_size: int,
        workers: int,
        progress: ProgressCallback | None,
        keep_unattended: bool = False,
    ) -> list[np.ndarray]:
        """Run length-sorted batches over ``workers`` threads; results in input order."""
        limit = self.manifest.max_batch_size or batch_size
        batches = length_sorted_batches([len(i) for i in ids], max(1, min(batch_size, limit)))
        out: list[np.ndarray] = [np.empty((0, self.dim), np.float32)] * len(ids)

        def run_batch(batch: np.ndarray) -> list[tuple[int, np.ndarray]]:
            return self._run_batch(session, batch, ids, attend, keep_unattended)

        if workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(workers) as pool:
                results: Iterable[list[tuple[int, np.ndarray]]] = pool.map(run_batch, batches)
                self._collect(results, out, progress)
        else:
            self._collect(map(run_batch, batches), out, progress)
        return out

    @staticmethod
    def _collect(
        results: Iterable[list[tuple[int, np.ndarray]]], out: list[np.ndarray], progress: ProgressCallback | None
    ) -> None:
        for pairs in results:
            for i, states in pairs:
                out[i] = states
            if progress is not None:
                progress(len(pairs))

    def _run_batch(
        self,
        session: Any,
        batch: np.ndarray,
        ids: list[np.ndarray],
        attend: list[np.ndarray],
        keep_unattended: bool,
    ) -> list[tuple[int, np.ndarray]]:
        width = max(len(ids[i]) for i in batch)
        input_ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, i in enumerate(batch):
            input_ids[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = attend[i]
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = session.run([self.manifest.output], {k: feeds[k] for k in self._inputs})[0]
        if hidden.ndim != 3 or hidden.shape[2] != self.dim:
            raise ModelError(f"model output has shape {hidden.shape}, manifest says dim {self.dim}")
        pairs = []
        for row, i in enumerate(batch):
            states = hidden[row, : len(ids[i])]
            if not keep_unattended:
                states = states[attend[i].astype(bool)]
            pairs.append((int(i), l2_normalize(states) if self.manifest.normalize else states.astype(np.float32)))
        return pairs
