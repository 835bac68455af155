from __future__ import annotations

import httpx
import openai
import pytest

from tests.server import ServerProcess

pytest_plugins = ["tests.fixtures_embed"]

LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def llm_server():
    """The server on its built-in default model, as a user starts it (plus metrics for assertions)."""
    server = ServerProcess("--metrics_enable", log_name="llm").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(llm_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{llm_server.url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def http(llm_server):
    with httpx.Client(base_url=llm_server.url, timeout=120) as c:
        yield c


def metric_value(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + ("{" + labels if labels else "")) or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def scrape(base_url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of `/metrics`, parsed with prometheus_client.parser: {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
