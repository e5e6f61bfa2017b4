"""The index configuration: what a file says about how its tokens were made and are stored.

An :class:`IndexConfig` is frozen. It is read from the file and validated once
per snapshot (:meth:`IndexConfig.from_json`, damage raises
:class:`CorruptIndexError`), and written only through ``Store.write_config``.
Build defaults and allowed values are defined here, once; the API, the CLI and
the codecs all take them from this module.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import CorruptIndexError, InvalidInputError

#: Most passages a document may be split into (an index's ``max_passages``): 4,096 windows of 256
#: tokens hold about a million tokens of text, ~35 MB stored and ~1.5 GB of float32 while encoding.
MAX_PASSAGES = 4096

#: Version of the JSON layout of the config row (not the schema version).
CONFIG_FORMAT = 1

INT8 = "int8"
RESIDUAL = "residual"
CODECS = (INT8, RESIDUAL)

#: Bits per residual value the residual codec supports.
NBITS = (1, 2, 4)
DEFAULT_NBITS = 2
#: Residual directions kept by default ("auto": this many, or every direction of a smaller model).
DEFAULT_RESIDUAL_DIM = 128
AUTO = "auto"
DEFAULT_SEED = 0
#: Centroid codes are stored as uint16.
MAX_CENTROIDS = 65536
MIN_CENTROIDS = 1
MAX_POOL_FACTOR = 64
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class ModelIdentity:
    """The model that encoded the index: name, weights fingerprint, output dimension, where it came from."""

    name: str
    fingerprint: str
    dim: int
    source: str  # a bundled model name, a model folder, or CUSTOM_ENCODER

    CUSTOM_ENCODER = "custom encoder"

    @property
    def is_custom(self) -> bool:
        return self.source == self.CUSTOM_ENCODER


@dataclass(frozen=True)
class CodecSpec:
    """Which token codec the index uses, with its parameters (residual only)."""

    kind: str = INT8
    nbits: int | None = None
    residual_dim: int | None = None
    n_centroids: int | None = None


@dataclass(frozen=True)
class BuildRecord:
    """What the last build saw: when, how many tokens and documents, which seed, and how
    much of a token its centroid explains (mean token-to-centroid cosine on held-out tokens;
    None in files built before it was recorded)."""

    at: float
    tokens: int
    documents: int
    seed: int
    centroid_cosine: float | None = None


@dataclass(frozen=True)
class IndexConfig:
    """Everything needed to interpret an index file's token data."""

    model: ModelIdentity
    skiplist: tuple[str, ...] | None = None  # document tokens dropped; None: the model's own choice
    pool_factor: int = 1
    passage_length: int | None = None  # document window in tokens; None: the model's
    passage_overlap: int | None = None  # tokens consecutive passages share; None: the model's (or length / 4)
    max_passages: int | None = None  # passages a document keeps at most; None: the model's
    codec: CodecSpec = field(default_factory=CodecSpec)
    build: BuildRecord | None = None
    lossy_generations: int = 0  # rebuilds that re-quantized stored codes (no better source) since the last full one
    shared_codec: str | None = None  # fingerprint of a codec trained for several shards; None: trained here
    format: int = CONFIG_FORMAT

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def is_built(self) -> bool:
        """Whether documents are stored with the residual codec (after a build)."""
        return self.codec.kind == RESIDUAL

    def built(
        self, codec: CodecSpec, record: BuildRecord, pool_factor: int, lossy: bool, shared: str | None = None
    ) -> IndexConfig:
        """This config after a build with ``codec``; ``lossy`` when some documents were
        re-encoded from their stored codes; ``shared``: the fingerprint of a shared codec."""
        generations = self.lossy_generations + 1 if lossy else 0
        return replace(
            self,
            codec=codec,
            build=record,
            pool_factor=pool_factor,
            lossy_generations=generations,
            shared_codec=shared,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["skiplist"] = None if self.skiplist is None else list(self.skiplist)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None, where: str = "index") -> IndexConfig:
        """Parse and validate the stored config row; any damage is a CorruptIndexError."""
        if text is None:
            raise CorruptIndexError(f"{where}: the index configuration is missing")
        try:
            data = json.loads(text)
            config = cls._from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptIndexError(f"{where}: the index configuration is damaged ({exc})") from exc
        config.validate(where)
        return config

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        if data.get("format") != CONFIG_FORMAT:
            raise ValueError(f"unknown config format {data.get('format')!r}")
        build = data.get("build")
        skiplist = data.get("skiplist")
        return cls(
            model=ModelIdentity(**data["model"]),
            skiplist=None if skiplist is None else tuple(skiplist),
            pool_factor=data["pool_factor"],
            passage_length=data.get("passage_length"),  # absent in files written before passages were chosen
            passage_overlap=data.get("passage_overlap"),
            max_passages=data.get("max_passages"),  # absent in files written before it could be chosen
            codec=CodecSpec(**data["codec"]),
            build=None if build is None else BuildRecord(**build),
            lossy_generations=data.get("lossy_generations", 0),
            shared_codec=data.get("shared_codec"),  # absent in files written before shards
            format=data["format"],
        )

    def validate(self, where: str = "index") -> None:
        """Types and ranges of every field (the config came from a file)."""

        def bad(what: str) -> CorruptIndexError:
            return CorruptIndexError(f"{where}: the index configuration has an invalid {what}")

        model, codec = self.model, self.codec
        if not all(isinstance(v, str) for v in (model.name, model.fingerprint, model.source)):
            raise bad("model identity")
        if not _is_int(model.dim) or model.dim <= 0:
            raise bad("dimension")
        if self.skiplist is not None and not all(isinstance(t, str) and t for t in self.skiplist):
            raise bad("skiplist")
        if not _is_int(self.pool_factor) or not 1 <= self.pool_factor <= MAX_POOL_FACTOR:
            raise bad("pool factor")
        if not _is_int(self.lossy_generations) or self.lossy_generations < 0:
            raise bad("lossy generation count")
        if self.shared_codec is not None and (not isinstance(self.shared_codec, str) or codec.kind != RESIDUAL):
            raise bad("shared codec fingerprint")
        for value in (self.passage_length, self.passage_overlap):
            if value is not None and (not _is_int(value) or value < 0):
                raise bad("passage window")
        if self.max_passages is not None and (
            not _is_int(self.max_passages) or not 1 <= self.max_passages <= MAX_PASSAGES
        ):
            raise bad("passage count")
        if codec.kind == INT8:
            if (codec.nbits, codec.residual_dim, codec.n_centroids) != (None, None, None):
                raise bad("int8 codec")
        elif codec.kind == RESIDUAL:
            nbits, r, k = codec.nbits, codec.residual_dim, codec.n_centroids
            if not (isinstance(nbits, int) and nbits in NBITS and _is_int(r) and _is_int(k)):
                raise bad("residual codec")
            assert r is not None and k is not None  # for type checkers: checked just above
            if not 0 < r <= model.dim or not MIN_CENTROIDS <= k <= MAX_CENTROIDS or (r * nbits) % 8:
                raise bad("residual codec")
            if self.build is None:
                raise bad("residual codec (no build record)")
        else:
            raise bad(f"codec {codec.kind!r}")
        record = self.build
        if record is not None and not (
            isinstance(record.at, (int, float))
            and all(_is_int(v) and v >= 0 for v in (record.tokens, record.documents, record.seed))
            and (record.centroid_cosine is None or isinstance(record.centroid_cosine, (int, float)))
        ):
            raise bad("build record")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class BuildOptions:
    """What a caller may choose for :meth:`Index.build`; the defaults are the product's."""

    nbits: int = DEFAULT_NBITS
    residual_dim: int | str | None = AUTO  # "auto": min(DEFAULT_RESIDUAL_DIM, dim); None: every direction
    n_centroids: int | None = None  # None: PLAID's rule for the collection size
    seed: int = DEFAULT_SEED
    pool_factor: int | None = None  # None: keep the index's current pooling

    @property
    def projected_dim(self) -> int | None:
        """Residual directions of validated options (None: every direction)."""
        if isinstance(self.residual_dim, str):
            raise InvalidInputError("build options must be validated first")
        return self.residual_dim

    def validated(self, dim: int) -> BuildOptions:
        """Checked and normalized (numpy integers accepted) for an index of dimension ``dim``."""
        nbits = _option_int("nbits", self.nbits)
        if nbits not in NBITS:
            raise InvalidInputError(f"nbits must be one of {', '.join(map(str, NBITS))}, got {self.nbits!r}")
        if self.residual_dim == AUTO:
            residual_dim: int | None = min(DEFAULT_RESIDUAL_DIM, dim)
        else:
            residual_dim = None if self.residual_dim is None else _option_int("residual_dim", self.residual_dim)
        if residual_dim is not None and not 1 <= residual_dim <= dim:
            raise InvalidInputError(
                f"residual_dim must be between 1 and the model dimension {dim}, None for all, or 'auto'"
            )
        r = dim if residual_dim is None else residual_dim
        if (r * nbits) % 8:
            raise InvalidInputError(f"residual_dim x nbits must be a multiple of 8 bits, got {r} x {nbits}")
        n_centroids = None if self.n_centroids is None else _option_int("n_centroids", self.n_centroids)
        if n_centroids is not None and not MIN_CENTROIDS <= n_centroids <= MAX_CENTROIDS:
            raise InvalidInputError(f"n_centroids must be between {MIN_CENTROIDS} and {MAX_CENTROIDS}")
        seed = _option_int("seed", self.seed)
        if not 0 <= seed <= MAX_SEED:
            raise InvalidInputError(f"seed must be between 0 and {MAX_SEED}")
        pool = None if self.pool_factor is None else _option_int("pool_factor", self.pool_factor)
        if pool is not None and not 1 <= pool <= MAX_POOL_FACTOR:
            raise InvalidInputError(f"pool_factor must be between 1 and {MAX_POOL_FACTOR}")
        return BuildOptions(
            nbits=nbits,
            residual_dim=None if residual_dim == dim else residual_dim,
            n_centroids=n_centroids,
            seed=seed,
            pool_factor=pool,
        )

    @classmethod
    def like(cls, codec: CodecSpec, seed: int) -> BuildOptions:
        """The options that rebuild an index with the same codec parameters."""
        if codec.kind != RESIDUAL:
            return cls(seed=seed)
        return cls(nbits=codec.nbits or DEFAULT_NBITS, residual_dim=codec.residual_dim, seed=seed)


def _option_int(name: str, value: object) -> int:
    """An integer option; numpy integers are accepted, bools and floats are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    return int(value)
