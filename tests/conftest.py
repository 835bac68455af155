from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.helpers import F32
from tests.server import ServerProcess

pytest_plugins = ["tests.fixtures_embed", "tests.fixtures_vlm"]

LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def llm_server():
    """The server on its built-in default models, as a user starts it, plus metrics for assertions and
    f32 for the LLM (greedy answers are then the same tokens on every CPU)."""
    server = ServerProcess("--metrics_enable", "--plugin_config", json.dumps(F32), log_name="llm").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(llm_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{llm_server.url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def http(llm_server):
    with httpx.Client(base_url=llm_server.url, timeout=120) as c:
        yield c
