"""``lateint serve``: open an index file and run the app on uvicorn until interrupted."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, StorageError
from ..extras import require
from .limits import ServerLimits

if TYPE_CHECKING:
    from ..index import Index

log = logging.getLogger("lateint_lite")

#: Environment variable read for the API key when none is given (keeps it out of `ps`).
API_KEY_ENV = "LATEINT_API_KEY"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; a busy port or a bad address is a clear error."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        raise StorageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve(
    path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    writable: bool = False,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the index at ``path`` until Ctrl-C (read-only unless ``writable``; loopback by default).

    The index is opened once and shared by the worker threads. The port is bound
    first (a busy port fails at once), then the index is warmed up (resident data
    loaded, kernels compiled by one search) before requests are answered, so the
    first request does not wait for compilation. ``on_ready`` gets the URL then.
    """
    require("fastapi", "serve", "lateint serve")
    uvicorn = require("uvicorn", "serve", "lateint serve")
    from ..index import open as open_index
    from .app import create_app

    key = api_key or os.environ.get(API_KEY_ENV) or None
    if not is_loopback(host) and key is None:
        log.warning("serving on %s without an API key: anyone who can reach this address can %s", host,
                    "read and write the index" if writable else "read the index")  # fmt: skip
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"port must be 0..65535, got {port}")
    with open_index(path, readonly=not writable) as index, contextlib.closing(bind(host, port)) as sock:
        _warm(index)  # connections made meanwhile wait in the listen backlog
        app = create_app(index, writable=writable, api_key=key, limits=limits)
        bound_port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        if on_ready is not None:
            shown = f"[{host}]" if ":" in host else host
            on_ready(f"http://{shown}:{bound_port}/")
        server.run(sockets=[sock])


def _warm(index: Index) -> None:
    """Load the resident data and compile the search kernels with one throwaway search (which
    also loads the model, so an index whose model cannot be loaded fails here, not per request)."""
    index.warm_up()
    if len(index):
        index.search("warm up", k=1)
