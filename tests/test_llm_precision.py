"""`inference_precision` on a real server: it sets the model's INFERENCE_PRECISION_HINT, which users
see in the numbers the model produces (logprobs) and in `/v3/models`."""
from __future__ import annotations

import openai
import openvino as ov
import pytest

from tests.fixtures_llm_ir import tiny_llama_ir
from tests.helpers import F32, write_config
from tests.server import ServerProcess

PROMPT = "Hello, how are you today?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = str(tiny_llama_ir(1))
    entries = [{"name": "option-f32", "base_path": model, "inference_precision": "f32"},
               {"name": "hint-f32", "base_path": model, "plugin_config": F32},
               {"name": "option-bf16", "base_path": model, "inference_precision": "bf16"},
               {"name": "default", "base_path": model}]
    path = write_config(tmp_path_factory.mktemp("precision") / "config.json", entries)
    process = ServerProcess("--config_path", str(path), log_name="precision").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused")


def logprobs(client: openai.OpenAI, model: str) -> list[float]:
    choice = client.completions.create(model=model, prompt=PROMPT, max_tokens=6, temperature=0, logprobs=1,
                                       extra_body={"ignore_eos": True}).choices[0]
    assert choice.logprobs is not None and choice.logprobs.token_logprobs
    return [float(x) for x in choice.logprobs.token_logprobs if x is not None]


def test_the_option_and_the_plugin_hint_give_the_same_numbers_and_f32_is_the_default(client):
    f32 = logprobs(client, "option-f32")
    assert f32 == logprobs(client, "hint-f32")
    assert f32 == logprobs(client, "default")
    described = {m.id: m.model_extra or {} for m in client.models.list().data}
    assert described["option-f32"]["inference_precision"] == "f32"
    assert described["hint-f32"]["inference_precision"] == "f32"
    assert described["default"]["inference_precision"] == "f32"
    assert described["option-bf16"]["inference_precision"] == "bf16"


@pytest.mark.skipif("BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"),
                    reason="the CPU has no bf16 instructions: the plugin runs bf16 as f32")
def test_bf16_changes_the_numbers_on_a_cpu_with_bf16(client):
    f32, bf16 = logprobs(client, "option-f32"), logprobs(client, "option-bf16")
    assert len(f32) == len(bf16)
    assert max(abs(a - b) for a, b in zip(f32, bf16, strict=True)) > 1e-3
