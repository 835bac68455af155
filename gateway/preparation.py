"""Request preparation off the event loop.

Preparing an LLM job (chat templating, tokenizing, option checks) runs C++ code for a few
milliseconds per request; inline, sixteen clients that start together wait for each other's
preparation before their first token, and every running stream's SSE writes wait with them. The
endpoints hand it to one worker thread instead: requests are prepared in arrival order, one at a
time, exactly as they were on the loop (so nothing in a servable needs to be thread-safe beyond
what the engine thread already shares with it), and the loop keeps serving meanwhile.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-prepare")


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on the preparation thread, with the caller's context variables (request id,
    usage notes); its exceptions (400s included) are raised here."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_worker, call)


def announced(engine: object) -> contextlib.AbstractContextManager[object]:
    """Around preparing a request and submitting it: the engine's `arriving()` where it has one (the LLM
    engine's burst admission waits for announced requests, scheduler/llm_engine.py), else nothing."""
    arriving = getattr(engine, "arriving", None)
    return arriving() if arriving is not None else contextlib.nullcontext()
