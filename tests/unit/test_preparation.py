"""Request preparation off the event loop (gateway/preparation.py)."""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading

import pytest

from gateway.preparation import announced, off_loop
from servables.errors import InvalidRequest

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_preparation_runs_on_its_worker_thread_with_the_callers_context():
    async def main() -> tuple[str, str]:
        REQUEST_ID.set("req-1")
        return await off_loop(lambda: (threading.current_thread().name, REQUEST_ID.get()))

    thread, request_id = asyncio.run(main())
    assert thread.startswith("llm-prepare") and request_id == "req-1"


def test_a_400_raised_while_preparing_reaches_the_endpoint():
    def prepare() -> None:
        raise InvalidRequest("bad messages", "messages")

    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(off_loop(prepare))
    assert caught.value.param == "messages"


def test_requests_are_prepared_one_at_a_time_in_arrival_order():
    order: list[int] = []

    async def main() -> None:
        await asyncio.gather(*(off_loop(order.append, i) for i in range(20)))

    asyncio.run(main())
    assert order == list(range(20))


def test_engines_without_burst_admission_need_no_announcement():
    class Plain:
        pass

    class Counting:
        def __init__(self) -> None:
            self.entered = 0

        @contextlib.contextmanager
        def arriving(self):
            self.entered += 1
            yield

    with announced(Plain()):
        pass
    engine = Counting()
    with announced(engine):
        pass
    assert engine.entered == 1
