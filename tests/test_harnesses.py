"""The reliability harnesses of scripts/ at reduced counts (issue 13); full counts come from the
scripts themselves (docs/benchmarks.md)."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import fuzz_corruption  # noqa: E402


def test_corruption_fuzz_ends_every_case_in_a_result_or_a_lateint_error():
    results = fuzz_corruption.fuzz(cases=60, seed=7, timeout=120)
    assert len(results) == 60
    bad = [r for r in results if r["outcome"] in fuzz_corruption.BAD_OUTCOMES]
    assert not bad, bad[:3]
    assert {r["mutation"] for r in results} == set(fuzz_corruption.MUTATIONS)
    assert any(r["outcome"] == "LateIntError" for r in results)  # damage is detected, not ignored


def test_killed_writers_lose_nothing_committed_and_leave_a_sound_file():
    import harness_crash

    results = harness_crash.run(kills=5, seed=3, max_delay=0.1)
    assert len(results) == 5
    assert all(not r["problems"] for r in results), results
    assert results[-1]["steps"] > 0  # the writer made progress between kills
