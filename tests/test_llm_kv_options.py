"""KV cache options on a real server: `kv_cache_precision` takes effect (KV bytes in /metrics)."""
from __future__ import annotations

import json

import httpx
import pytest

from servables.config_file import ConfigError
from servables.llm_options import LLMOptions
from tests.conftest import metric_value
from tests.fixtures_llm_ir import tiny_llama_ir
from tests.server import ServerProcess

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    entries = [{"name": f"kv-{p}", "base_path": str(tiny_llama_ir(1)), "plugin_config": F32, "kv_cache_precision": p}
               for p in ("f32", "u8")]
    path = tmp_path_factory.mktemp("kv") / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    process = ServerProcess("--config_path", str(path), "--metrics_enable", log_name="kv").start()
    yield process
    process.stop()


def test_u8_kv_cache_takes_less_memory_and_still_generates(server):
    texts, kv_bytes = {}, {}
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for precision in ("f32", "u8"):
            model = f"kv-{precision}"
            body = {"model": model, "prompt": "Hello, how are you today?", "max_tokens": 100, "temperature": 0,
                    "ignore_eos": True}
            texts[precision] = http.post("/v3/completions", json=body).json()["choices"][0]["text"]
            kv_bytes[precision] = metric_value(http.get("/metrics").text, "genai_kv_cache_bytes", f'name="{model}"')
        described = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert 0 < kv_bytes["u8"] < 0.5 * kv_bytes["f32"]
    assert described["kv-u8"]["kv_cache_precision"] == "u8"
    assert len(texts["u8"]) > 0 and len(texts["f32"]) > 0


@pytest.mark.parametrize("value", ["i8", "U8", 8])
def test_unknown_kv_cache_precisions_are_config_errors(value):
    with pytest.raises(ConfigError):
        LLMOptions.from_dict({"kv_cache_precision": value})
