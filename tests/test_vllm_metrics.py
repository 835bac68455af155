"""vLLM's metric names on /metrics (the Gateway API Inference Extension's model-server protocol)."""
from __future__ import annotations

import threading

import httpx
import openai
import pytest

from tests.conftest import LLM
from tests.helpers import metric_samples, scrape, wait_for
from tests.server import ServerProcess

STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]


@pytest.fixture(scope="module")
def server():
    """One sequence at a time, so that a second request waits while the first one runs."""
    server = ServerProcess("--metrics_enable", "--max_num_seqs", "1", log_name="vllm-metrics").start()
    yield server
    server.stop()


def samples_of(server: ServerProcess) -> dict[tuple[str, frozenset], float]:
    """/metrics parsed by prometheus_client: {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value for s in metric_samples(scrape(server))}


def model_value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset({"model_name": LLM, **labels}.items()))]


def cache_info(samples: dict) -> dict[str, str]:
    (labels,) = [dict(key) for name, key in samples if name == "vllm:cache_config_info"]
    return labels


def test_counters_and_histograms_count_the_traffic_sent(server):
    client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
    prompt = completion = 0
    for n in (3, 5, 8):
        reply = client.chat.completions.create(model=LLM, messages=[{"role": "user", "content": f"Count to {n}."}],
                                               max_tokens=n, temperature=0)
        prompt += reply.usage.prompt_tokens
        completion += reply.usage.completion_tokens
    samples = samples_of(server)
    assert model_value(samples, "vllm:prompt_tokens_total") == prompt
    assert model_value(samples, "vllm:generation_tokens_total") == completion
    assert model_value(samples, "vllm:time_to_first_token_seconds_count") == 3
    assert model_value(samples, "vllm:e2e_request_latency_seconds_count") == 3
    assert model_value(samples, "vllm:time_to_first_token_seconds_bucket", le="+Inf") == 3
    # the aliases carry the same observations as our own families
    assert samples[("genai_prompt_tokens_total", frozenset({"name": LLM}.items()))] == prompt
    assert (model_value(samples, "vllm:e2e_request_latency_seconds_sum")
            == samples[("genai_e2e_request_latency_seconds_sum", frozenset({"name": LLM}.items()))])
    # idle again: nothing running or waiting, no KV cache in use
    assert model_value(samples, "vllm:num_requests_running") == 0
    assert model_value(samples, "vllm:num_requests_waiting") == 0
    assert model_value(samples, "vllm:kv_cache_usage_perc") == 0
    # no model is served with LoRA adapters: no lora_requests_info (tests/test_llm_lora.py has it)
    assert not [name for name, _ in samples if name == "vllm:lora_requests_info"]


def test_queue_and_kv_gauges_while_one_request_runs_and_one_waits(server):
    client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
    started = threading.Event()
    stop = threading.Event()

    def stream() -> None:
        chunks = client.chat.completions.create(model=LLM, messages=STORY, max_tokens=400, temperature=0,
                                                stream=True, extra_body={"ignore_eos": True})
        for _ in chunks:
            started.set()
            if stop.is_set():
                break
        chunks.close()

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert started.wait(60)
        samples = wait_for(lambda: (s := samples_of(server)) and model_value(s, "vllm:num_requests_waiting") == 1
                           and model_value(s, "vllm:kv_cache_usage_perc") > 0 and s)
        assert model_value(samples, "vllm:num_requests_running") == 1
        usage = model_value(samples, "vllm:kv_cache_usage_perc")
        assert 0 < usage <= 1
        info = cache_info(samples)
        assert info["model_name"] == LLM and info["block_size"] == "32"
        blocks = int(info["num_gpu_blocks"])
        assert blocks >= 1
        assert abs(usage * blocks - round(usage * blocks)) < 1e-3  # a whole number of blocks is in use
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    samples = wait_for(lambda: (s := samples_of(server)) and model_value(s, "vllm:num_requests_running") == 0
                       and model_value(s, "vllm:num_requests_waiting") == 0 and s)
    assert model_value(samples, "vllm:kv_cache_usage_perc") == 0


@pytest.mark.slow
def test_vllm_names_are_off_with_the_flag():
    server = ServerProcess("--metrics_enable", "--vllm_metrics", "false", log_name="vllm-off").start()
    try:
        text = httpx.get(f"{server.url}/metrics").text
        assert "genai_requests_running{" in text
        assert "vllm:" not in text
    finally:
        server.stop()
