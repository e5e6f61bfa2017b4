"""Synthetic ColBERT-like collections for benchmarks: reproducible token vectors, no encoder.

``Generator`` (the easy one, bench_scale's since 2026-11): each document draws
50-150 tokens around 3 of 4,096 topic centres at token-to-centre cosine ~0.75.

``HardGenerator`` (issue 11): tokens are noisy mixtures, closer to what a real
late-interaction model produces and much harder to compress and prune:
- a share of every document is "stop-word" tokens near a few shared directions,
  which every document has and which match every query;
- content tokens mix one of the document's 3 topics (of 4,096), a per-document
  signature direction and heavy isotropic noise (token-to-topic cosine ~0.45);
- a query has 32 tokens drawn the same way from one source document (fresh noise),
  so exact MaxSim finds the source, but only through many weak matches.

Both return unit float32 vectors; document ``i`` and query ``q`` are the same in
every run (seeded per number).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class VectorsOnly:
    """Encoder identity for an index fed only precomputed vectors."""

    def __init__(self, dim: int) -> None:
        self._dim = dim

    name = "synthetic"

    @property
    def fingerprint(self) -> str:
        return f"synthetic-dim{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode_documents(self, texts: Sequence[str], **_: object) -> list[np.ndarray]:
        raise RuntimeError("synthetic index: pass vectors")

    def encode_queries(self, texts: Sequence[str], **_: object) -> list[np.ndarray]:
        raise RuntimeError("synthetic index: pass vectors")


class Generator:
    """Clustered unit token vectors, reproducible per document number."""

    def __init__(self, dim: int, seed: int = 0, n_topics: int = 4096, cosine: float = 0.75) -> None:
        rng = np.random.default_rng(seed)
        self.centres = _unit(rng.standard_normal((n_topics, dim)))
        self.sigma = float(np.sqrt((1 / cosine**2 - 1) / dim))
        self.seed = seed
        self.dim = dim

    def document(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """(token vectors, topics) of document ``number``."""
        rng = np.random.default_rng((self.seed, number))
        topics = rng.choice(len(self.centres), size=3, replace=False)
        n = int(rng.integers(50, 151))
        tokens = self.centres[rng.choice(topics, n)] + self.sigma * rng.standard_normal((n, self.dim))
        return _unit(tokens), topics

    def query(self, number: int, n_tokens: int = 32) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 10**9 + number))
        _, topics = self.document(int(rng.integers(0, 10**6)))
        tokens = self.centres[rng.choice(topics, n_tokens)] + self.sigma * rng.standard_normal((n_tokens, self.dim))
        return _unit(tokens)

    def batch(self, start: int, stop: int) -> list[dict]:
        return [
            {"id": f"doc{i}", "text": f"synthetic document {i}", "vectors": self.document(i)[0]}
            for i in range(start, stop)
        ]


class HardGenerator:
    """Noisy topic + signature + stop-word mixtures (see the module docstring)."""

    def __init__(
        self,
        dim: int = 128,
        seed: int = 0,
        n_topics: int = 4096,
        n_stop: int = 48,
        stop_share: float = 0.3,
        topic_weight: float = 0.5,
        signature_weight: float = 0.45,
        noise: float = 0.75,
    ) -> None:
        rng = np.random.default_rng((seed, 7))
        self.centres = _unit(rng.standard_normal((n_topics, dim)))
        self.stops = _unit(rng.standard_normal((n_stop, dim)))
        self.seed, self.dim = seed, dim
        self.stop_share, self.topic_weight, self.signature_weight, self.noise = (
            stop_share,
            topic_weight,
            signature_weight,
            noise,
        )

    def _profile(self, number: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(topics, signature, token count) of document ``number``."""
        rng = np.random.default_rng((self.seed, number))
        topics = rng.choice(len(self.centres), size=3, replace=False)
        signature = _unit(rng.standard_normal((1, self.dim)))[0]
        return topics, signature, int(rng.integers(50, 151))

    def _tokens(self, rng: np.random.Generator, topics: np.ndarray, signature: np.ndarray, n: int) -> np.ndarray:
        stop = rng.random(n) < self.stop_share
        content = (
            self.topic_weight * self.centres[rng.choice(topics, n)]
            + self.signature_weight * signature
            + self.noise * rng.standard_normal((n, self.dim)) / np.sqrt(self.dim)
        )
        stops = self.stops[rng.integers(0, len(self.stops), n)] + 0.35 * rng.standard_normal((n, self.dim)) / np.sqrt(
            self.dim
        )
        return _unit(np.where(stop[:, None], stops, content))

    def document(self, number: int) -> np.ndarray:
        topics, signature, n = self._profile(number)
        return self._tokens(np.random.default_rng((self.seed, number, 1)), topics, signature, n)

    def query(self, number: int, n_docs: int, n_tokens: int = 32) -> tuple[np.ndarray, int]:
        """(query tokens, source document number < n_docs) of query ``number``."""
        rng = np.random.default_rng((self.seed, 10**9 + number))
        source = int(rng.integers(0, n_docs))
        topics, signature, _ = self._profile(source)
        return self._tokens(rng, topics, signature, n_tokens), source

    def batch(self, start: int, stop: int) -> list[dict]:
        return [
            {"id": f"doc{i}", "text": f"synthetic document {i}", "vectors": self.document(i)}
            for i in range(start, stop)
        ]


def exact_top(queries: list[np.ndarray], docs: list[np.ndarray], k: int) -> list[list[int]]:
    """Float32 exact MaxSim top-k document numbers for each query (the ground truth)."""
    flat = np.concatenate(docs)
    starts = np.concatenate([[0], np.cumsum([len(d) for d in docs])[:-1]])
    out = []
    for q in queries:
        scores = np.maximum.reduceat(flat @ q.T, starts, axis=0).sum(axis=1)  # per document
        out.append(np.argsort(-scores, kind="stable")[:k].tolist())
    return out


def recall_at(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    """Mean share of the true top-k that ``found`` has in its top k."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))
