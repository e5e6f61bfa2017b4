"""A small deterministic encoder for unit tests: one hashed random vector per word."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"\w+")


class HashEncoder:
    """Each lower-cased word maps to a fixed random unit vector seeded by its CRC32.

    Shared words give identical token vectors, so MaxSim behaves like soft
    lexical matching and results are predictable in tests.
    """

    def __init__(self, dim: int = 32, name: str = "hash-fake") -> None:
        self._dim = dim
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        return f"{self._name}-v1-dim{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def word_vector(self, word: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(word.encode("utf-8")))
        vec = rng.standard_normal(self._dim).astype(np.float32)
        return vec / np.linalg.norm(vec)

    def document_token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int] | None]]:
        """Character spans of the words :meth:`encode_documents` turns into vectors."""
        return [[m.span() for m in WORD.finditer(text)] or [None] for text in texts]

    def _encode(self, text: str) -> np.ndarray:
        words = WORD.findall(text.lower()) or ["[empty]"]
        return np.stack([self.word_vector(w) for w in words])

    def encode_documents(self, texts: Sequence[str], *, batch_size: int = 16, progress=None) -> list[np.ndarray]:
        out = [self._encode(t) for t in texts]
        if progress is not None:
            progress(len(texts))
        return out

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        return [self._encode(t) for t in texts]


class FailingEncoder(HashEncoder):
    """Raises on the n-th encode_documents call, to test that failed adds write nothing."""

    def __init__(self, fail_on_call: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls = 0
        self.fail_on_call = fail_on_call

    def encode_documents(self, texts, *, batch_size=16, progress=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("encoder exploded")
        return super().encode_documents(texts, batch_size=batch_size, progress=progress)


class PassageHashEncoder(HashEncoder):
    """A HashEncoder that splits a document into windows of ``window`` words (``overlap`` repeated),
    as the ONNX encoder splits long documents into passages."""

    def __init__(self, window: int = 4, overlap: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.window = window
        self.overlap = overlap

    def _windows(self, n: int) -> list[tuple[int, int]]:
        step = self.window - self.overlap
        starts = range(0, max(n - self.overlap, 1), step)
        return [(s, min(s + self.window, n)) for s in starts]

    def encode_document_passages(self, texts: Sequence[str], *, batch_size: int = 16, progress=None):
        out = []
        for matrix in super().encode_documents(texts):
            out.append([matrix[a:b] for a, b in self._windows(len(matrix))])
        if progress is not None:
            progress(len(texts))
        return out

    def encode_documents(self, texts: Sequence[str], *, batch_size: int = 16, progress=None) -> list[np.ndarray]:
        return [np.concatenate(p) for p in self.encode_document_passages(texts, progress=progress)]

    def document_token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int] | None]]:
        out = []
        for spans in super().document_token_spans(texts):
            out.append([s for a, b in self._windows(len(spans)) for s in spans[a:b]])
        return out


class SlowEncoder(HashEncoder):
    """A HashEncoder that sleeps ``delay`` seconds per encode_documents call and touches
    ``started`` (a path) on the first, to hold a write in its encoding phase for a while."""

    def __init__(self, delay: float, started: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.started = started

    def encode_documents(self, texts, *, batch_size=16, progress=None):
        import pathlib
        import time

        pathlib.Path(self.started).touch()
        time.sleep(self.delay)
        return super().encode_documents(texts, batch_size=batch_size, progress=progress)
