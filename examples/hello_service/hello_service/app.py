"""The service's request handling, kept apart from the server so it can be tested without a socket."""

from __future__ import annotations

import importlib.metadata
import platform
import urllib.parse
from http import HTTPStatus

import markupsafe
import orjson


def native_escape() -> bool:
    """Whether markupsafe escapes with its C extension (_speedups), not its pure-Python fallback."""
    return type(getattr(markupsafe, "_escape_inner", None)).__name__ == "builtin_function_or_method"


def hello(query: str) -> bytes:
    """GET /hello?name=NAME: a JSON greeting, serialized by orjson, with the name HTML-escaped by markupsafe."""
    name = (urllib.parse.parse_qs(query).get("name") or ["world"])[0]
    body = {
        "message": f"hello, {name}",
        "html": str(markupsafe.escape(f"<b>{name}</b>")),
        "squares": [n * n for n in range(5)],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "packages": {name: importlib.metadata.version(name) for name in ("orjson", "markupsafe")},
        "native_escape": native_escape(),
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def route(path: str) -> tuple[HTTPStatus, bytes]:
    """The status and JSON body for a GET of `path`."""
    parsed = urllib.parse.urlsplit(path)
    if parsed.path == "/hello":
        return HTTPStatus.OK, hello(parsed.query)
    if parsed.path == "/healthz":
        return HTTPStatus.OK, orjson.dumps({"ok": True})
    return HTTPStatus.NOT_FOUND, orjson.dumps({"error": f"no route {parsed.path}"})
