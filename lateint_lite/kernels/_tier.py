"""Which tier runs the read kernels in this process: ``numba`` (compiled, parallel; the
default) or ``numpy`` (no JIT: what a short-lived process that searches a small index
wants, docs/ARCHITECTURE.md "Cold start").

The choice is per process, like numba's own threading settings: ``LATEINT_KERNELS`` in the
environment, :func:`use_tier`, or :func:`tier_in_use` for a block (the CLI's search commands
pick it per index). Writes always
run in numba.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InvalidInputError

KERNEL_TIERS = ("numba", "numpy")
#: The tier :func:`use_tier` chose for this process (empty: the environment decides).
_process: list[str] = []
#: Tiers of the :func:`tier_in_use` blocks now open, innermost last; they win over the above.
_scoped: list[str] = []


def _checked(tier: str, source: str) -> str:
    if tier not in KERNEL_TIERS:
        raise InvalidInputError(f"{source} must be one of {', '.join(KERNEL_TIERS)}, not {tier!r}")
    return tier


def active_tier() -> str:
    """The tier read kernels run in: the innermost :func:`tier_in_use` block, else the last
    :func:`use_tier`, else ``$LATEINT_KERNELS``, else numba."""
    if _scoped:
        return _scoped[-1]
    if _process:
        return _process[0]
    return _checked(os.environ.get("LATEINT_KERNELS", "numba") or "numba", "LATEINT_KERNELS")


def use_tier(tier: str) -> None:
    """Run read kernels in ``tier`` ("numba" or "numpy") from now on in this process (inside an
    open :func:`tier_in_use` block, once the block ends)."""
    _process[:] = [_checked(tier, "the kernel tier")]


@contextmanager
def tier_in_use(tier: str) -> Iterator[None]:
    """Run read kernels in ``tier`` inside the ``with`` block, then go back to the tier before."""
    _scoped.append(_checked(tier, "the kernel tier"))
    try:
        yield
    finally:
        _scoped.pop()
