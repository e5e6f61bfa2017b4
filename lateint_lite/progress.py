"""Progress reporting for long work: a tqdm bar, a caller's callback, or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``True`` shows a tqdm bar on stderr, a callable receives increments, ``False`` is silent.
ProgressArg = bool | Callable[[int], None]


class progress_bar:
    """Context manager yielding ``tick(n)``, which advances the bar or calls back."""

    def __init__(self, progress: ProgressArg, total: int, desc: str, unit: str = "doc") -> None:
        self._bar: Any = None
        self._callback: Callable[[int], None] | None = None
        if callable(progress):
            self._callback = progress
        elif progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit)
            self._callback = self._bar.update

    def __enter__(self) -> Callable[[int], None]:
        return self._callback or (lambda n: None)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
