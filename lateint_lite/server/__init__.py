"""HTTP access to one index: JSON endpoints and a search page (the ``serve`` extra).

    from lateint_lite.server import create_app
    app = create_app(index, writable=False)      # any ASGI server can run it

``lateint serve IDX`` opens the file and runs the app on uvicorn (:func:`serve`).
The FastAPI/uvicorn imports happen inside these functions, so importing this
package without the extra fails only when the server is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .limits import ServerLimits

if TYPE_CHECKING:
    from .app import create_app
    from .run import serve


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(f"module 'lateint_lite.server' has no attribute {name!r}")


__all__ = ["ServerLimits", "create_app", "serve"]
