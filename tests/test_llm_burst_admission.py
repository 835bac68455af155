"""Burst admission: requests arriving within `admission_window_ms` of each other start in one batch."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.fixtures_llm_ir import tiny_llama_ir
from tests.helpers import metric_value, scrape, write_config
from tests.server import ServerProcess

WINDOWS = {"burst": 1000, "one-by-one": 0}  # a wide window: CI jitter must not split the burst
CLIENTS, SPACING_S = 6, 0.04  # arrivals 40 ms apart: inside the burst window, far beyond one step of the tiny model


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    entries = [{"name": name, "base_path": str(tiny_llama_ir(1)), "admission_window_ms": window}
               for name, window in WINDOWS.items()]
    path = write_config(tmp_path_factory.mktemp("burst") / "config.json", entries)
    process = ServerProcess("--config_path", str(path), "--metrics_enable", log_name="burst").start()
    yield process
    process.stop()


def _admissions(http: httpx.Client, model: str) -> tuple[float, float]:
    text = scrape(http)
    return (metric_value(text, "genai_admission_batches", name=model),
            metric_value(text, "genai_admitted_requests", name=model))


def _staggered(http: httpx.Client, model: str) -> list[int]:
    statuses: list[int] = []
    body = {"model": model, "prompt": "Hello", "max_tokens": 40, "temperature": 0, "ignore_eos": True}

    def send() -> None:
        statuses.append(http.post("/v3/completions", json=body).status_code)

    threads = []
    for _ in range(CLIENTS):
        threads.append(threading.Thread(target=send))
        threads[-1].start()
        time.sleep(SPACING_S)
    for thread in threads:
        thread.join()
    return statuses


def test_a_burst_is_admitted_together_and_without_the_window_one_by_one(server):
    with httpx.Client(base_url=server.url, timeout=120, limits=httpx.Limits(max_connections=CLIENTS + 2)) as http:
        for model in WINDOWS:
            before = _admissions(http, model)
            assert _staggered(http, model) == [200] * CLIENTS
            batches, admitted = (a - b for a, b in zip(_admissions(http, model), before, strict=True))
            assert admitted == CLIENTS
            if model == "burst":
                assert batches == 1
            else:
                assert batches > 1
