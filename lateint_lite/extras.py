"""Optional extras: importing a module that an extra installs, or a clear error naming the extra."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from .errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``; when it is missing, :class:`MissingExtraError` says which extra to install."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{purpose} needs the {extra} extra: pip install 'lateint-lite[{extra}]'") from exc
