"""ASGI middleware that refuses unsafe requests before any route runs.

- `..` segments in the path: 400.
- Bodies over `max_body_bytes`: 413 (checked on Content-Length and while reading).
- JSON nested deeper than `max_json_depth`: 400 (Python's parser would recurse instead), for
  every body FastAPI parses as JSON (no Content-Type, `application/json`, `application/*+json`).
Routes that parse their body themselves whatever its Content-Type (KServe's JSON header before a
binary tail, TFS) call `load_json`, which applies the same limit (`app.state.max_json_depth`).
The path check answers at once (OpenAI's error body: no route is involved). The body checks note
their refusal in the scope state and pass an empty body on: the route that takes the request raises
it before anything else (gateway/routes.py), so that it is rendered in the route's error family
(an Anthropic route answers Anthropic's error shape, KServe/TFS `{"error": ...}`); a request that
reaches no route gets the router's 404/405. The API key is checked by the routes that declare
themselves protected (gateway/routes.py), not here.
"""
from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import Any

from servables.errors import InvalidRequest, PayloadTooLarge, ServingError

from . import fast_json
from .error_policy import openai_error

_BRACKETS = re.compile(rb'[\[\]{}"\\]')
REFUSAL_KEY = "guard_refusal"  # in the scope state: the ServingError the route must raise


def pending_refusal(scope: MutableMapping[str, Any]) -> ServingError | None:
    """The guard's refusal of this request's body, for the route to raise (None: the body passed)."""
    refusal = scope.get("state", {}).get(REFUSAL_KEY)
    return refusal if isinstance(refusal, ServingError) else None


def _error(status: int, message: str, error_type: str) -> tuple[int, bytes]:
    return status, json.dumps(openai_error(message, error_type)).encode()


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when brackets outside strings nest deeper than `limit`."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, skip_at = 0, False, -1
    for match in _BRACKETS.finditer(body):
        position, char = match.start(), match.group()
        if position == skip_at:  # the character right after a backslash inside a string
            continue
        if in_string:
            if char == b"\\":
                skip_at = position + 1
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def load_json(body: bytes, limit: int) -> Any:
    """`json.loads` for a body a route parses itself: too deep or not JSON is an InvalidRequest (400)."""
    if json_depth_exceeds(body, limit):
        raise InvalidRequest(f"The JSON body is nested deeper than {limit} levels")
    try:
        return fast_json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError too
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc


def parsed_as_json(content_type: bytes | None) -> bool:
    """True when FastAPI would parse a body with this Content-Type as JSON (fastapi/routing.py)."""
    if not content_type:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class GuardMiddleware:
    def __init__(self, app, max_body_bytes: int = 64 * 2**20, max_json_depth: int = 100) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if (".." in path and ".." in path.split("/")) or b"/../" in (scope.get("raw_path") or b""):
            await self._refuse(send, *_error(400, "Invalid request URL: path traversal is not allowed",
                                              "invalid_request_error"))
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length, content_type = None, b""
        for key, value in scope.get("headers") or ():
            if key == b"content-length":
                length = value
            elif key == b"content-type":
                content_type = value
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._pass_refused(scope, receive, send, self._too_large())
            return
        chunks: list[bytes] = []
        size, more_messages = 0, True
        while more_messages:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
            more_messages = message.get("more_body", False)
            if size > self.max_body_bytes:
                await self._pass_refused(scope, receive, send, self._too_large())
                return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk (the usual case): no copy
        if parsed_as_json(content_type or None) and json_depth_exceeds(body, self.max_json_depth):
            refusal = InvalidRequest(f"The JSON body is nested deeper than {self.max_json_depth} levels")
            await self._pass_refused(scope, receive, send, refusal)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body larger than {self.max_body_bytes} bytes")

    async def _pass_refused(self, scope, receive, send, refusal: ServingError) -> None:
        """On to the route with an empty body and the refusal noted: the route raises it in its family."""
        scope.setdefault("state", {})[REFUSAL_KEY] = refusal
        await self.app(scope, _replay(b"", receive), send)

    @staticmethod
    async def _refuse(send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the real receive would

    return replayed
