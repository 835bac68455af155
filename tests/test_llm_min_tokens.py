"""`min_tokens` and `stop_token_ids` (vLLM's names) on a real server with the tiny fp32 Llama."""
from __future__ import annotations

import httpx
import openai
import pytest

from tests.fixtures_llm_ir import tiny_llama_ir
from tests.helpers import F32, write_config
from tests.server import ServerProcess

MODEL = "tiny"
PROMPT = ("Repeat: The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. "
          "Count to ten: one two three four five. The quick brown fox")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = write_config(tmp_path_factory.mktemp("min-tokens") / "config.json",
                        [{"name": MODEL, "base_path": str(tiny_llama_ir(1)), "plugin_config": F32}])
    process = ServerProcess("--config_path", str(path), log_name="min-tokens").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)


def _chat(client, **extra):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=60,
                                          temperature=0, extra_body=extra)


def test_min_tokens_keeps_generating_past_eos(client):
    plain = _chat(client)
    assert plain.choices[0].finish_reason == "stop" and plain.usage.completion_tokens < 40  # the model ends early
    longer = _chat(client, min_tokens=plain.usage.completion_tokens + 10)
    assert longer.usage.completion_tokens >= plain.usage.completion_tokens + 10
    assert longer.choices[0].message.content.startswith(plain.choices[0].message.content)


def test_stop_token_ids_end_the_output_at_that_token(client, server):
    plain = _chat(client).choices[0].message.content
    ids = httpx.post(f"{server.url}/v3/tokenize", json={"model": MODEL, "text": plain,
                                                        "add_special_tokens": False}).json()["tokens"]
    stopped = _chat(client, stop_token_ids=[ids[3]])
    text = stopped.choices[0].message.content
    assert stopped.choices[0].finish_reason == "stop" and stopped.usage.completion_tokens <= 3
    assert plain.startswith(text) and len(text) < len(plain)


@pytest.mark.parametrize("extra,param", [({"min_tokens": -1}, "min_tokens"), ({"min_tokens": 61}, "min_tokens"),
                                         ({"stop_token_ids": [-5]}, "stop_token_ids"),
                                         ({"stop_token_ids": ["2"]}, "stop_token_ids"),
                                         ({"logit_bias": {"5": 10}}, "logit_bias"), ({"priority": 1}, "priority")])
def test_invalid_or_unsupported_fields_are_a_400_naming_them(client, extra, param):
    with pytest.raises(openai.BadRequestError) as info:
        _chat(client, **extra)
    assert info.value.body["param"].split(".")[0] == param
