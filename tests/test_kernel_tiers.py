"""The numpy read tier answers like the numba tier: kernel by kernel, whole searches over
fake-encoder indexes, and `lateint search` on a small index without importing numba."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference
from fakes import HashEncoder, PassageHashEncoder

import lateint_lite as li
from lateint_lite import kernels
from lateint_lite.errors import InvalidInputError
from lateint_lite.kernels import numpy_tier

WORDS = [
    "ocean",
    "river",
    "mountain",
    "forest",
    "desert",
    "glacier",
    "volcano",
    "island",
    "canyon",
    "valley",
    "prairie",
    "swamp",
    "coral",
    "reef",
    "tide",
    "current",
    "storm",
    "thunder",
    "lightning",
    "rain",
    "snow",
    "frost",
    "wind",
    "breeze",
    "cloud",
    "fog",
    "granite",
    "basalt",
    "marble",
    "quartz",
    "copper",
    "iron",
    "silver",
    "gold",
    "carbon",
    "oxygen",
    "nitrogen",
    "helium",
]
QUERIES = ["ocean storm", "granite quartz marble", "rain snow frost fog", "gold silver copper", "volcano island"]


def both_tiers(fn):
    """fn() in the numba tier and in the numpy tier."""
    with kernels.tier_in_use("numba"):
        compiled = fn()
    with kernels.tier_in_use("numpy"):
        plain = fn()
    return compiled, plain


def corpus(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"id": f"d{i}", "text": " ".join(rng.choice(WORDS, rng.integers(3, 40))), "meta": {"group": int(i % 3)}}
        for i in range(n)
    ]


def assert_same_hits(compiled, plain):
    assert [h.id for h in compiled] == [h.id for h in plain]
    np.testing.assert_allclose([h.score for h in compiled], [h.score for h in plain], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiers") / "built.lateint"
    with li.open(path, create=True, encoder=PassageHashEncoder(window=12, overlap=3)) as idx:
        idx.add(corpus(400))
        idx.build(n_centroids=32, seed=0)
    return path


@pytest.mark.parametrize(
    "options",
    [{}, {"exact": True}, {"where": {"group": 1}}, {"ncells": 1, "ndocs": 32}, {"mode": "hybrid"}],
)
def test_searches_of_a_built_index_agree(built, options):
    with li.open(built, readonly=True, encoder=PassageHashEncoder(window=12, overlap=3)) as idx:
        for query in QUERIES:
            compiled, plain = both_tiers(lambda q=query: idx.search(q, k=8, **options))
            assert compiled, query
            assert_same_hits(compiled, plain)
            assert [h.passage for h in compiled] == [h.passage for h in plain]


def test_searches_of_an_unbuilt_index_agree(tmp_path):
    with li.open(tmp_path / "raw.lateint", create=True, encoder=HashEncoder()) as idx:
        idx.add(corpus(120, seed=1))
        for query in QUERIES:
            assert_same_hits(*both_tiers(lambda q=query: idx.search(q, k=10)))
        assert_same_hits(*both_tiers(lambda: idx.rerank(QUERIES[0], ["d3", "d7", "d11", "d50"], k=4)))


def test_numpy_blocks_split_documents_without_changing_scores(built, monkeypatch):
    encoder = PassageHashEncoder(window=12, overlap=3)
    with li.open(built, readonly=True, encoder=encoder) as idx, kernels.tier_in_use("numpy"):
        whole = [idx.search(q, k=8, exact=True) for q in QUERIES]
        monkeypatch.setattr(numpy_tier, "BLOCK_TOKENS", 7)
        blocked = [idx.search(q, k=8, exact=True) for q in QUERIES]
    for a, b in zip(whole, blocked, strict=True):
        assert_same_hits(a, b)


@pytest.mark.parametrize("ncells", [1, 3, 50])
def test_select_cells_agrees_with_the_reference_including_ties(ncells):
    rng = np.random.default_rng(ncells)
    scores_t = np.round(rng.uniform(-1, 1, (40, 6)), 1).astype(np.float32)  # many equal scores
    want_cells, want_keep = reference.select_cells_reference(scores_t, ncells, 0.5)
    for cells, keep in both_tiers(lambda: kernels.select_cells(scores_t, ncells, 0.5)):
        np.testing.assert_array_equal(cells, want_cells)
        np.testing.assert_array_equal(keep, want_keep)


def test_varint_decoding_agrees_on_many_rows():
    rng = np.random.default_rng(5)
    rows = [np.unique(rng.integers(0, 2 ** int(rng.integers(1, 40)), rng.integers(0, 30))) for _ in range(200)]
    blobs = kernels.varint_encode_lists(
        np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64),
        np.concatenate(rows).astype(np.int64),
    )
    compiled, plain = both_tiers(lambda: kernels.varint_decode_lists(blobs, 2**40))
    for a, b in zip(compiled, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(plain[1], np.concatenate(rows))


def test_an_unknown_tier_is_a_clear_error(monkeypatch):
    with pytest.raises(InvalidInputError, match="kernel tier"):
        kernels.use_tier("gpu")
    monkeypatch.setenv("LATEINT_KERNELS", "fortran")
    with pytest.raises(InvalidInputError, match="LATEINT_KERNELS"):
        kernels.active_tier()


def test_a_block_decides_inside_it_and_the_process_choice_outlives_it(monkeypatch):
    from lateint_lite.kernels import _tier

    monkeypatch.setattr(_tier, "_process", [])
    monkeypatch.delenv("LATEINT_KERNELS", raising=False)
    with kernels.tier_in_use("numba"):
        kernels.use_tier("numpy")
        assert kernels.active_tier() == "numba"
        with kernels.tier_in_use("numpy"):
            assert kernels.active_tier() == "numpy"
        assert kernels.active_tier() == "numba"
    assert kernels.active_tier() == "numpy"


def test_writes_run_in_numba_whatever_the_tier():
    with kernels.tier_in_use("numpy"):
        assert kernels.pool_documents is kernels.numba_kernel("pool_documents")
        assert kernels.maxsim_residual is numpy_tier.maxsim_residual
    with pytest.raises(AttributeError):
        kernels.numpy_kernel("encode_residuals")


CLI_RUN = """
import json, sys
from lateint_lite.cli import main
code = main([*sys.argv[3:], sys.argv[1], sys.argv[2], "-k", "3", "--json"])
print(json.dumps({"code": code, "numba": "numba" in sys.modules}), file=sys.stderr)
"""


def cli_search(index: Path, query: str, *command: str, **env: str) -> tuple[list[dict], dict]:
    """`lateint <command or search> INDEX QUERY -k 3 --json` in a fresh process: (hits, whether
    numba was imported)."""
    environment = {k: v for k, v in os.environ.items() if k != "LATEINT_KERNELS"} | env
    argv = [sys.executable, "-c", CLI_RUN, str(index), query, *(command or ("search",))]
    result = subprocess.run(argv, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), json.loads(result.stderr.strip().splitlines()[-1])


def test_cli_search_of_a_small_index_never_imports_numba(tmp_path):
    index = tmp_path / "small.lateint"
    with li.open(index, create=True) as idx:
        idx.add([{"id": f"d{i}", "text": doc["text"]} for i, doc in enumerate(corpus(60, seed=2))])
        idx.build(n_centroids=16, seed=0)
    plain, plain_run = cli_search(index, "storm over the ocean")
    compiled, compiled_run = cli_search(index, "storm over the ocean", LATEINT_KERNELS="numba")
    assert plain_run == {"code": 0, "numba": False}
    assert compiled_run == {"code": 0, "numba": True}
    assert [h["id"] for h in plain] == [h["id"] for h in compiled]
    np.testing.assert_allclose([h["score"] for h in plain], [h["score"] for h in compiled], rtol=1e-5)


def test_documents_whose_tokens_are_all_pruned_score_zero_in_both_tiers():
    scores_t = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.3]], dtype=np.float32)  # 3 centroids x 2 query tokens
    codes = np.array([2, 2, 0, 2, 1, 2], dtype=np.uint16)
    offsets = np.array([0, 2, 4, 6], dtype=np.int64)  # doc 0 holds only centroid 2
    keep = np.array([True, True, False])
    for got in both_tiers(lambda: kernels.centroid_maxsim(scores_t, codes, offsets, np.arange(3), keep)):
        np.testing.assert_allclose(got, [0.0, 0.9 + 0.1, 0.2 + 0.8])


def test_cli_shard_search_of_small_shards_never_imports_numba(tmp_path):
    manifest = tmp_path / "small.shards.json"
    with li.open_sharded(manifest, create=True, shards=2) as sharded:
        sharded.add([{"id": f"d{i}", "text": doc["text"]} for i, doc in enumerate(corpus(40, seed=3))])
    plain, plain_run = cli_search(manifest, "granite and quartz", "shard", "search")
    compiled, compiled_run = cli_search(manifest, "granite and quartz", "shard", "search", LATEINT_KERNELS="numba")
    assert plain_run == {"code": 0, "numba": False}
    assert compiled_run == {"code": 0, "numba": True}
    assert [h["id"] for h in plain] == [h["id"] for h in compiled] and len(plain) == 3
    np.testing.assert_allclose([h["score"] for h in plain], [h["score"] for h in compiled], rtol=1e-5)
