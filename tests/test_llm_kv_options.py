"""KV cache options on a real server: `kv_cache_precision` takes effect (KV bytes in /metrics)."""
from __future__ import annotations

import httpx
import pytest

from tests.fixtures_llm_ir import tiny_llama_ir
from tests.helpers import F32, metric, write_config
from tests.server import ServerProcess

EVICTION = {"start_size": 32, "recent_size": 32, "max_cache_size": 128}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    entries = [{"name": f"kv-{p}", "base_path": str(tiny_llama_ir(1)), "plugin_config": F32, "kv_cache_precision": p}
               for p in ("f32", "u8")]
    entries.append({"name": "evicting", "base_path": str(tiny_llama_ir(1)), "plugin_config": F32,
                    "kv_cache_precision": "f32", "cache_eviction": EVICTION})
    path = write_config(tmp_path_factory.mktemp("kv") / "config.json", entries)
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
            kv_bytes[precision] = metric(http, "genai_kv_cache_bytes", name=model)
        described = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert 0 < kv_bytes["u8"] < 0.5 * kv_bytes["f32"]
    assert described["kv-u8"]["kv_cache_precision"] == "u8"
    assert len(texts["u8"]) > 0 and len(texts["f32"]) > 0


def test_cache_eviction_bounds_the_kv_cache_of_a_long_generation(server):
    body = {"prompt": "hello there " * 20, "max_tokens": 300, "temperature": 0, "ignore_eos": True}
    kv_bytes = {}
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for model in ("kv-f32", "evicting"):
            assert http.post("/v3/completions", json={"model": model, **body}).status_code == 200
            kv_bytes[model] = metric(http, "genai_kv_cache_bytes", name=model)
    assert 0 < kv_bytes["evicting"] <= 0.6 * kv_bytes["kv-f32"]
