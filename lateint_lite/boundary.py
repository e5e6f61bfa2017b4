"""The error boundary: every exception leaving the public API is a :class:`LateIntError`.

:func:`guarded` wraps public functions and methods; :func:`translate` maps a foreign
exception (SQLite through apsw, the operating system, codecs, numba) to the
LateIntError subclass a caller can act on, with the original chained as
``__cause__``. ``KeyboardInterrupt`` and ``SystemExit`` pass through untouched.
"""

from __future__ import annotations

import errno
import functools
import gzip
import zlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

import apsw

from .errors import (
    CorruptIndexError,
    DiskFullError,
    IndexBusyError,
    InternalError,
    InvalidInputError,
    LateIntError,
    NotAnIndexError,
    ReadOnlyError,
    StorageError,
)

F = TypeVar("F", bound=Callable[..., Any])

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def _sqlite_error(exc: apsw.Error, where: str) -> LateIntError:
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return IndexBusyError(
            f"{where}: another connection kept the index locked past the busy timeout "
            "(a long build or optimize? raise busy_timeout, or retry later)"
        )
    if isinstance(exc, apsw.FullError):
        return DiskFullError(f"{where}: disk full; nothing was written")
    if isinstance(exc, apsw.ConnectionClosedError | apsw.CursorClosedError):
        return LateIntError(f"{where}: the index is closed")
    if isinstance(exc, apsw.ReadOnlyError | apsw.PermissionsError):
        return ReadOnlyError(f"{where}: the file or its directory is read-only (open with readonly=True to search)")
    if isinstance(exc, apsw.CorruptError):
        return CorruptIndexError(f"{where}: the database file is damaged ({exc}); restore a copy")
    if isinstance(exc, apsw.NotADBError):
        return NotAnIndexError(f"{where}: not a SQLite database")
    if isinstance(exc, apsw.CantOpenError):
        return StorageError(f"{where}: cannot open the file (missing directory, permissions or read-only media?)")
    if isinstance(exc, apsw.TooBigError):
        return InvalidInputError(f"{where}: a value is larger than SQLite accepts")
    if isinstance(exc, apsw.IOError | apsw.NoMemError | apsw.ProtocolError | apsw.NoLFSError):
        return StorageError(f"{where}: I/O error from SQLite: {exc}")
    return InternalError(f"{where}: unexpected SQLite error: {type(exc).__name__}: {exc}")


def _os_error(exc: OSError, where: str) -> LateIntError:
    if isinstance(exc, gzip.BadGzipFile):
        return InvalidInputError(f"{where}: damaged gzip data: {exc}")
    detail = exc.strerror or str(exc)
    name = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _DISK_FULL:
        return DiskFullError(f"{where}: disk full{name}; nothing was written")
    if exc.errno in _READ_ONLY:
        return ReadOnlyError(f"{where}: {detail}{name}")
    return StorageError(f"{where}: {detail}{name}")


def translate(exc: BaseException, where: str) -> BaseException:
    """The LateIntError to raise for ``exc`` (``exc`` itself when it is one, or must pass through)."""
    if isinstance(exc, LateIntError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return exc
    if isinstance(exc, apsw.Error):
        return _sqlite_error(exc, where)
    if isinstance(exc, OSError):
        return _os_error(exc, where)
    if isinstance(exc, UnicodeError):
        return InvalidInputError(f"{where}: text is not valid Unicode (lone surrogates or undecodable bytes): {exc}")
    if isinstance(exc, zlib.error | EOFError):
        return InvalidInputError(f"{where}: damaged compressed data: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidInputError(f"{where}: input nested too deeply")
    if isinstance(exc, MemoryError):
        return StorageError(f"{where}: out of memory")
    return InternalError(f"{where}: internal error: {type(exc).__name__}: {exc} (please report this)")


def _where(args: tuple[Any, ...], name: str) -> str:
    """The index path when the call is a method of an object with one, else the function name."""
    path = getattr(args[0], "path", None) if args else None
    return str(path) if isinstance(path, str) else name


def guarded(fn: F) -> F:
    """``fn`` with every foreign exception translated (see :func:`translate`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            mapped = translate(exc, _where(args, fn.__name__))
            if mapped is exc:
                raise
            raise mapped from exc

    return cast(F, wrapper)
