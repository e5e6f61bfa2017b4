"""Maintenance: build, optimize, automatic build, staleness, compaction.

Every decision that depends on the index's state (is it built, how is it
pooled, did it grow enough to retrain) is made inside the write transaction
that acts on it, so another process cannot change the state in between.
Compaction (VACUUM) runs after the commit; if it fails, the committed work
stands and the report says compaction was skipped and why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from . import segments
from .builder import BuildReport, build_codec, draw_sample
from .config import BuildOptions, IndexConfig
from .encoder import Encoder
from .errors import InvalidInputError, LateIntError
from .memory import return_freed_memory
from .origins import SuppliedVectors, VectorSource
from .progress import ProgressArg, progress_bar
from .shared_codec import SharedCodec
from .state import StateCache
from .store import Store

log = logging.getLogger(__name__)

#: An unbuilt index is built automatically once an add leaves it with this many tokens.
AUTO_BUILD_TOKENS = 50_000
#: optimize() retrains when the token count grew or shrank by this factor since the last build.
RETRAIN_GROWTH = 2.0
#: build() VACUUMs when more than this share of the file is free pages.
COMPACT_FREE_FRACTION = 0.25


def staleness(config: IndexConfig, n_tokens: int) -> str | None:
    """Why :meth:`Maintenance.optimize` would (re)build now, or None."""
    if not config.is_built or config.build is None:
        return "not built yet" if n_tokens >= AUTO_BUILD_TOKENS else None
    built = config.build.tokens
    if built and n_tokens >= RETRAIN_GROWTH * built:
        return f"grew {n_tokens / built:.1f}x since the last build"
    if built and n_tokens * RETRAIN_GROWTH <= built:
        return f"shrank to {n_tokens / built:.2f}x of the last build"
    return None


@dataclass(frozen=True)
class OptimizeReport:
    """What :meth:`Maintenance.optimize` did."""

    documents: int
    tokens: int
    action: str  # "built", "retrained", "lists rebuilt" or "nothing to build"
    reason: str | None
    build: BuildReport | None
    segments_before: int  # segments the documents were in; afterwards there is one
    file_bytes_before: int
    file_bytes_after: int
    compact_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Maintenance:
    """build / optimize / auto-build over one store."""

    def __init__(self, store: Store, cache: StateCache, encoder: Callable[[], Encoder]) -> None:
        self._store = store
        self._cache = cache
        self._encoder = encoder

    def build(
        self,
        options: BuildOptions,
        *,
        vectors: SuppliedVectors | None = None,
        lossy: bool = False,
        progress: ProgressArg = False,
        compact: bool = True,
        shared: SharedCodec | None = None,
    ) -> BuildReport:
        """Train the residual codec (or take ``shared``) and re-encode every document from its best
        source, in one transaction (see :mod:`lateint_lite.origins` for ``vectors`` and ``lossy``)."""
        with self._store.unmapped(), self._store.write():
            if shared is None:
                self._refuse_own_codec_for_shard("build()")
            report = self._build(options, progress, vectors, lossy, shared)
        return_freed_memory()
        if compact and self._store.free_fraction() > COMPACT_FREE_FRACTION:
            report = self._compacted(report)
        return report

    def build_due(self) -> bool:
        """Whether :meth:`auto_build` would build now (checked again under its write lock)."""
        with self._store.snapshot():
            return self._due_tokens() is not None

    def _due_tokens(self) -> int | None:
        """The stored token count when an automatic build is due (the index unbuilt and holding
        ``AUTO_BUILD_TOKENS``), else None; inside a snapshot or write. A built index is not
        counted."""
        if self._cache.config().is_built:
            return None
        n_tokens = self._store.counts()[1]
        return n_tokens if n_tokens >= AUTO_BUILD_TOKENS else None

    def auto_build(self, *, progress: ProgressArg = False) -> BuildReport | None:
        """Build an unbuilt index that holds ``AUTO_BUILD_TOKENS`` tokens; None when not due."""
        with self._store.write():
            n_tokens = self._due_tokens()
            if n_tokens is None:
                return None
            log.info("%s: building automatically (%d tokens)", self._store.path, n_tokens)
            with self._store.unmapped():
                report = self._build(BuildOptions(), progress, None, False)
        return_freed_memory()
        if self._store.free_fraction() > COMPACT_FREE_FRACTION:
            report = self._compacted(report)
        return report

    def optimize(
        self,
        *,
        retrain: bool = False,
        vectors: SuppliedVectors | None = None,
        lossy: bool = False,
        progress: ProgressArg = False,
    ) -> OptimizeReport:
        """Build or retrain when due (or asked), else make every document one segment whose lists
        are recomputed from the codes (merges segments, drops tombstones, repairs damaged lists);
        rebuild the full-text index; then VACUUM."""
        with self._store.unmapped(), self._store.write():
            config = self._cache.config()
            n_docs, n_tokens = self._store.counts()
            n_segments = len(self._store.segments())
            if retrain:
                self._refuse_own_codec_for_shard("optimize(retrain=True)")
            # a shard keeps the codec it shares: growth alone never retrains it on its own
            reason = "asked" if retrain else None if config.shared_codec else staleness(config, n_tokens)
            build: BuildReport | None = None
            if n_docs and reason is not None:
                action = "retrained" if config.is_built else "built"
                seed = config.build.seed if config.build else BuildOptions.seed
                build = self._build(BuildOptions.like(config.codec, seed), progress, vectors, lossy)
            else:
                codec = self._cache.current().codec
                cells = ((row.doc_id, codec.cells(row)) for row in self._store.iter_codes())
                segments.replace_all(self._store, cells if codec.supports_pruning else None)
                action = "lists rebuilt" if codec.supports_pruning else "nothing to build"
            self._store.rebuild_fts()
        return_freed_memory()
        before = self._store.storage_bytes()["file"]
        _, error = self._compact()
        return OptimizeReport(
            documents=n_docs,
            tokens=n_tokens,
            action=action,
            reason=reason if build is not None else None,
            build=build,
            segments_before=n_segments,
            file_bytes_before=before,
            file_bytes_after=self._store.storage_bytes()["file"],
            compact_error=error,
        )

    def sample(self, sample_tokens: int, heldout_tokens: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors of random documents from the best source a build would use: (training
        sample, held-out sample), about that many tokens each (for a codec shared by shards)."""
        with self._store.snapshot():
            state = self._cache.current()
            source = VectorSource(
                self._store,
                state.codec,
                current_pool=state.config.pool_factor,
                target_pool=state.config.pool_factor,
                encoder=self._encoder,
            )
            source.check_available()
            counts = self._store.doc_token_counts()
            sample, heldout, _ = draw_sample(counts, source, state.config.dim, sample_tokens, heldout_tokens, seed)
        return sample.take(slice(None)), heldout.take(slice(None))

    def _refuse_own_codec_for_shard(self, what: str) -> None:
        shared = self._cache.config().shared_codec
        if shared is not None:
            raise InvalidInputError(
                f"{self._store.path} is a shard: its codec ({shared[:12]}) is shared with the other shards, so "
                f"{what} of its own would make its scores incomparable; rebuild through the sharded index "
                "(ShardedIndex.build / `lateint shard build`) or pass codec="
            )

    def _build(
        self,
        options: BuildOptions,
        progress: ProgressArg,
        vectors: SuppliedVectors | None,
        lossy: bool,
        shared: SharedCodec | None = None,
    ) -> BuildReport:
        """Decide pooling and sources, build, and record the new configuration; inside the write."""
        state = self._cache.current()
        config = state.config
        if shared is not None:
            shared.check_dim(config.dim)
            options = replace(BuildOptions.like(shared.spec, shared.seed), pool_factor=options.pool_factor)
        options = options.validated(config.dim)
        current_pool = config.pool_factor
        wanted = current_pool if options.pool_factor is None else options.pool_factor
        if wanted != current_pool and current_pool != 1:
            raise InvalidInputError(f"tokens are already pooled by {current_pool}; pooling applies once")
        source = VectorSource(
            self._store,
            state.codec,
            current_pool=current_pool,
            target_pool=wanted,
            encoder=self._encoder,
            supplied=vectors,
            lossy=lossy,
        )
        source.check_available()
        started = time.perf_counter()
        with progress_bar(progress, self._store.counts()[0], "building") as tick:
            codec, record, report = build_codec(
                self._store,
                source=source,
                dim=config.dim,
                options=options,
                pool_factor=wanted,
                progress=tick,
                shared=shared,
            )
        self._store.set_origins(source.learned.items())
        fingerprint = None if shared is None else shared.fingerprint
        self._store.write_config(
            config.built(codec.spec, record, wanted, source.used_stored_codes, fingerprint).to_json()
        )
        log.info(
            "%s: built %d documents, %d centroids, %d B/token in %.1f s%s",
            self._store.path,
            report.documents,
            report.n_centroids,
            report.bytes_per_token,
            time.perf_counter() - started,
            " (lossy: some documents re-encoded from their stored codes)" if source.used_stored_codes else "",
        )
        return replace(report, lossy=source.used_stored_codes)

    def _compacted(self, report: BuildReport) -> BuildReport:
        seconds, error = self._compact()
        return replace(report, compact_seconds=seconds, compact_error=error)

    def _compact(self) -> tuple[float | None, str | None]:
        """VACUUM after a commit: (seconds, None), or (None, why it was skipped)."""
        started = time.perf_counter()
        try:
            with self._store.unmapped():  # VACUUM reads every page: not into this process's RSS
                self._store.compact()
        except LateIntError as exc:
            log.warning("%s: compaction skipped: %s", self._store.path, exc)
            return None, str(exc)
        return round(time.perf_counter() - started, 2), None
