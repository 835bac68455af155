"""vLLM's metric names, for routers that read them: the Gateway API Inference Extension's endpoint
picker (llm-d, KServe's LLMInferenceService) scrapes queue depth and KV-cache use from `/metrics`
under vLLM's names (its "model server protocol"); dashboards chart vLLM's latency histograms.

Every family is labelled `model_name`, as vLLM labels them; only text generation models appear.
`vllm:lora_requests_info` has no `model_name`, as in vLLM: it is one sample for the whole server.
The README's "vLLM metric names" table maps each one to the OVMS / genai family it mirrors.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

LABEL = "model_name"


def observe_generation(families: Any, model: str, prompt_tokens: int, completion_tokens: int,
                       ttft_s: float | None, tpot_s: float | None, e2e_s: float) -> None:
    """One finished generation into a set of families named `prompt_tokens`, `generation_tokens`, `ttft`,
    `tpot`, `e2e` (ours in gateway/metrics.py and the vLLM-named ones here observe the same values)."""
    families.prompt_tokens.labels(model).inc(prompt_tokens)
    families.generation_tokens.labels(model).inc(completion_tokens)
    if ttft_s is not None:
        families.ttft.labels(model).observe(ttft_s)
    if tpot_s is not None:
        families.tpot.labels(model).observe(tpot_s)
    families.e2e.labels(model).observe(e2e_s)


class VllmMetrics:
    """The vLLM families in `registry`: histograms and counters observed with ours, gauges read at scrape."""

    def __init__(self, registry: CollectorRegistry, manager, latency_buckets: list[float],
                 tpot_buckets: list[float]) -> None:
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Time to first token", [LABEL],
                              registry=registry, buckets=latency_buckets)
        self.tpot = Histogram("vllm:time_per_output_token_seconds", "Time per output token after the first",
                              [LABEL], registry=registry, buckets=tpot_buckets)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Generation latency from admission to end",
                             [LABEL], registry=registry, buckets=latency_buckets)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prompt tokens processed", [LABEL], registry=registry)
        self.generation_tokens = Counter("vllm:generation_tokens", "Tokens generated", [LABEL], registry=registry)
        registry.register(VllmEngineCollector(manager))

    def generation_finished(self, model: str, prompt_tokens: int, completion_tokens: int, ttft_s: float | None,
                            tpot_s: float | None, e2e_s: float) -> None:
        observe_generation(self, model, prompt_tokens, completion_tokens, ttft_s, tpot_s, e2e_s)


class VllmEngineCollector:
    """`vllm:num_requests_running|waiting`, `vllm:kv_cache_usage_perc` (0..1), `vllm:cache_config_info`
    and, when a model is served with LoRA adapters, `vllm:lora_requests_info`.

    cache_config_info (value 1, facts in labels as vLLM does): `block_size` is the tokens per KV block
    of OpenVINO GenAI's paged attention (32 on CPU); `num_gpu_blocks` is the number of blocks the
    pipeline has allocated now, in host memory on CPU. With `cache_size` 0 (the default) the cache
    grows on demand, so this number grows too; with a fixed `cache_size` it is the capacity.

    lora_requests_info follows vLLM's logger (vllm/v1/metrics/loggers.py): its value is the current Unix
    time (the endpoint picker reads the newest sample), its labels carry the facts: `max_lora` (adapters
    active at once: one per LoRA model, its pipeline holds one adapter at a time) and the comma-separated
    adapters of running and of waiting requests, named as clients request them (`<model>:<adapter>`).
    """

    def __init__(self, manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running = GaugeMetricFamily("vllm:num_requests_running", "Requests in the running batch", labels=[LABEL])
        waiting = GaugeMetricFamily("vllm:num_requests_waiting", "Requests waiting for a slot", labels=[LABEL])
        usage = GaugeMetricFamily("vllm:kv_cache_usage_perc", "KV-cache usage at the last step (1 = full)",
                                  labels=[LABEL])
        info = GaugeMetricFamily("vllm:cache_config_info", "KV-cache configuration",
                                 labels=[LABEL, "block_size", "num_gpu_blocks"])
        max_lora = 0
        running_lora: list[str] = []
        waiting_lora: list[str] = []
        for deployment in self.manager.deployments():
            if deployment.kind.name != "text_generation":
                continue
            stats = deployment.engine.stats()
            name = deployment.name
            running.add_metric([name], float(stats.running))
            waiting.add_metric([name], float(stats.waiting))
            usage.add_metric([name], float(stats.kv_cache_usage_percent) / 100.0)
            if stats.kv_block_size is not None and stats.kv_blocks is not None:
                info.add_metric([name, str(stats.kv_block_size), str(stats.kv_blocks)], 1.0)
            max_lora += stats.max_lora
            running_lora += stats.running_lora_adapters
            waiting_lora += stats.waiting_lora_adapters
        yield from (running, waiting, usage, info)
        if max_lora:
            lora = GaugeMetricFamily("vllm:lora_requests_info", "Running stats on LoRA requests",
                                     labels=["max_lora", "running_lora_adapters", "waiting_lora_adapters"])
            lora.add_metric([str(max_lora), ",".join(running_lora), ",".join(waiting_lora)], time.time())
            yield lora
