"""The web playground: GET / and /ui serve a small static page (gateway/static/), GET /ui/<file> its assets.

No build step and no CDN: the page is plain HTML, CSS and JavaScript shipped in the wheel. It talks
to the gateway's own APIs from the browser (chat streaming, images, embeddings/rerank, /v1/config
and /metrics). The routes are public GETs; the APIs the page calls keep their API key, which the
page asks for when the server answers 401. `--ui off` leaves this router out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response

from .routes import Access, declared_router

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"playground.js": "text/javascript; charset=utf-8", "playground.css": "text/css; charset=utf-8"}
HEADERS = {
    # the page runs only its own script and reaches only this server: model output cannot load anything
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = declared_router(access=Access.PUBLIC)


def _file(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=HEADERS)


def _text(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a page or asset (OpenAPI: the body is text of one of these types)."""
    return {200: {"description": "A file of the playground",
                  "content": {media: {"schema": {"type": "string"}} for media in media_types}}}


@router.get("/", response_class=Response, responses=_text("text/html"))
@router.get("/ui", response_class=Response, responses=_text("text/html"))
async def page() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/ui/{name}", response_class=Response, responses=_text("text/javascript", "text/css"))
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"No such file: {name}")
    return _file(name, ASSETS[name])
