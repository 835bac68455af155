"""Where engines report what they did; the gateway installs a Prometheus-backed sink.

The scheduler stays free of any metrics library: engines call the sink returned by `sink()`,
a no-op until `install()` is called.
"""
from __future__ import annotations

from typing import Protocol


class TelemetrySink(Protocol):
    def generation_finished(self, model: str, prompt_tokens: int, completion_tokens: int, ttft_s: float | None,
                            tpot_s: float | None, e2e_s: float) -> None: ...

    def request_rejected(self, model: str) -> None: ...


class NullSink:
    def generation_finished(self, *args, **kwargs) -> None:
        pass

    def request_rejected(self, *args, **kwargs) -> None:
        pass


_sink: TelemetrySink = NullSink()


def install(new_sink: TelemetrySink) -> None:
    global _sink
    _sink = new_sink


def sink() -> TelemetrySink:
    return _sink
