"""Prometheus metrics: the OVMS families (OVMS docs/metrics.md) plus generation metrics vLLM operators expect.

Request-level families are recorded by gateway/observability.py; token and latency histograms come
from the engines through scheduler.telemetry; engine gauges are read at scrape time.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from servables.kinds import TENSOR_ENDPOINT

from .error_policy import openai_error
from .routes import Access, declared_router
from .vllm_metrics import VllmMetrics, observe_generation

router = declared_router(Access.PUBLIC)
disable_created_metrics()  # OVMS exposes no *_created series

# OVMS: 33 fixed bounds floor(10 * 1.8^i) microseconds
OVMS_BUCKETS_US = [float(int(10 * 1.8 ** i)) for i in range(33)]
LATENCY_BUCKETS_S = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                     40.0, 80.0]
TPOT_BUCKETS_S = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                  1.0, 2.5]

OVMS_DEFAULT = (
    "ovms_requests_success", "ovms_requests_fail", "ovms_request_time_us", "ovms_current_requests",
    "ovms_requests_accepted", "ovms_requests_rejected", "ovms_responses", "ovms_graph_error",
    "ovms_graph_processing_time_us", "ovms_current_graphs", "ovms_graph_loaded",
)
EXTENSIONS = (
    "genai_prompt_tokens", "genai_generation_tokens", "genai_time_to_first_token_seconds",
    "genai_time_per_output_token_seconds", "genai_e2e_request_latency_seconds", "genai_queue_rejections",
    "genai_requests_running", "genai_requests_waiting", "genai_kv_cache_usage_percent",
    "genai_batches", "genai_batch_items",
    "genai_arbiter_units", "genai_arbiter_wait_seconds", "genai_arbiter_busy_seconds", "genai_arbiter_queued",
    "genai_arbiter_running",
    "genai_image_steps", "genai_images_generated", "genai_image_requests_cancelled",
    "genai_speculative_steps", "genai_speculative_accepted_tokens", "genai_speculative_draft_tokens",
    "genai_lora_adapter_switches", "genai_kv_cache_bytes", "genai_admission_batches", "genai_admitted_requests",
)
SUPPORTED = OVMS_DEFAULT + EXTENSIONS


class MetricsConfigError(ValueError):
    pass


def select_families(metrics_enable: bool, metrics_list: Iterable[str] | None) -> tuple[str, ...] | None:
    """None when metrics are off; raises with OVMS's messages for an invalid selection."""
    names = [n.strip() for n in (metrics_list or []) if n.strip()]
    if names and not metrics_enable:
        raise MetricsConfigError("metrics_enable setting is missing, required when metrics_list is provided")
    if not metrics_enable:
        return None
    for name in names:
        if name not in SUPPORTED:
            raise MetricsConfigError(f"Metrics family name not supported: {name}")
    return tuple(names) or SUPPORTED


class _Noop:
    """Stands in for a family that is not selected."""

    def labels(self, *args, **kwargs) -> _Noop:
        return self

    def inc(self, *args) -> None: ...

    def dec(self, *args) -> None: ...

    def observe(self, *args) -> None: ...


@functools.lru_cache(maxsize=4096)
def child(family: Any, *labels: str) -> Any:
    """`family.labels(*labels)`, looked up once per label set (prometheus_client's `labels()` checks
    and locks on every call; children are never removed here)."""
    return family.labels(*labels)


class Metrics:
    """All families, created in one registry; unselected ones are no-ops."""

    def __init__(self, families: tuple[str, ...], manager, vllm: bool = True) -> None:
        self.registry = CollectorRegistry()
        self.families = families
        v3 = ["api", "interface", "method", "name"]
        classic = ["api", "interface", "method", "name", "version"]

        self._counters: dict[str, Counter] = {}
        counter_registry = CollectorRegistry()  # counters live here; exposed under OVMS names by _OvmsCounters

        def make(kind, name, doc, labels, **kw):
            if name not in families:
                return _Noop()
            if kind is Counter:
                self._counters[name] = Counter(name, doc, labels, registry=counter_registry)
                return self._counters[name]
            return kind(name, doc, labels, registry=self.registry, **kw)

        self.requests_success = make(Counter, "ovms_requests_success", "Successful requests to a model", classic)
        self.requests_fail = make(Counter, "ovms_requests_fail", "Failed requests to a model", classic)
        self.request_time = make(Histogram, "ovms_request_time_us", "Processing time of a model request",
                                 ["interface", "name", "version"], buckets=OVMS_BUCKETS_US)
        self.current_requests = make(Gauge, "ovms_current_requests", "Requests in flight", ["name", "version"])
        self.accepted = make(Counter, "ovms_requests_accepted", "Generative requests accepted by a servable", v3)
        self.rejected = make(Counter, "ovms_requests_rejected", "Generative requests rejected (queue full)", v3)
        self.responses = make(Counter, "ovms_responses", "Responses sent (one per unary reply or streamed chunk)", v3)
        self.graph_error = make(Counter, "ovms_graph_error", "Generative requests that ended in an error", v3)
        self.processing_time = make(Histogram, "ovms_graph_processing_time_us", "Duration of a generative request",
                                    ["name", "method"], buckets=OVMS_BUCKETS_US)
        self.current_graphs = make(Gauge, "ovms_current_graphs", "Generative requests in flight", ["name"])
        self.prompt_tokens = make(Counter, "genai_prompt_tokens", "Prompt tokens processed", ["name"])
        self.generation_tokens = make(Counter, "genai_generation_tokens", "Tokens generated", ["name"])
        self.ttft = make(Histogram, "genai_time_to_first_token_seconds", "Time to first token", ["name"],
                         buckets=LATENCY_BUCKETS_S)
        self.tpot = make(Histogram, "genai_time_per_output_token_seconds", "Time per output token after the first",
                         ["name"], buckets=TPOT_BUCKETS_S)
        self.e2e = make(Histogram, "genai_e2e_request_latency_seconds", "Generation latency from admission to end",
                        ["name"], buckets=LATENCY_BUCKETS_S)
        self.queue_rejections = make(Counter, "genai_queue_rejections", "Requests refused with 503 (queue full)",
                                     ["name"])
        self.registry.register(EngineCollector(manager, families))
        self.registry.register(ImageEngineCollector(manager, families))
        self.registry.register(ArbiterCollector(families))
        if "ovms_graph_loaded" in families:
            self.registry.register(LoadedCollector(manager))
        self.registry.register(_OvmsCounters(self._counters))
        self.manager = manager
        self._prepared: set[str] = set()
        self.vllm = VllmMetrics(self.registry, manager, LATENCY_BUCKETS_S, TPOT_BUCKETS_S) if vllm else None

    def _prepare_series(self) -> None:
        """As OVMS: every servable's series exist from the start, at 0."""
        for deployment in self.manager.deployments():
            name = deployment.name
            if name in self._prepared or TENSOR_ENDPOINT in deployment.kind.endpoints:  # KServe/TFS families
                continue
            self._prepared.add(name)
            for method in ("Unary", "Stream"):
                for family in (self.accepted, self.rejected, self.responses, self.graph_error):
                    family.labels("V3", "REST", method, name)
                self.processing_time.labels(name, method)
            self.current_graphs.labels(name)

    # scheduler.telemetry sink
    def generation_finished(self, model: str, prompt_tokens: int, completion_tokens: int, ttft_s: float | None,
                            tpot_s: float | None, e2e_s: float) -> None:
        observe_generation(self, model, prompt_tokens, completion_tokens, ttft_s, tpot_s, e2e_s)
        if self.vllm is not None:
            self.vllm.generation_finished(model, prompt_tokens, completion_tokens, ttft_s, tpot_s, e2e_s)

    def request_rejected(self, model: str) -> None:
        self.queue_rejections.labels(model).inc()

    def exposition(self) -> bytes:
        self._prepare_series()
        text = generate_latest(self.registry).decode()
        # prometheus_client names every counter family *_total in HELP/TYPE; ours (as OVMS's) have
        # samples without the suffix, so the header lines follow the samples' name
        for name in re.findall(r"^# TYPE (\S+)_total counter$", text, flags=re.M):
            if not re.search(rf"^{re.escape(name)}_total[{{ ]", text, flags=re.M):
                text = text.replace(f"# HELP {name}_total ", f"# HELP {name} ").replace(
                    f"# TYPE {name}_total counter", f"# TYPE {name} counter")
        return text.encode()


class _OvmsCounters:
    """Re-emits counters with OVMS's sample names (`ovms_responses{...}`, not `ovms_responses_total`)."""

    def __init__(self, counters: dict[str, Counter]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        for name, counter in self.counters.items():
            for family in counter.collect():
                metric = Metric(name, family.documentation, "counter")
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        metric.add_sample(name, sample.labels, sample.value)
                yield metric


class EngineCollector:
    """Per-model engine gauges read at scrape time (an extension: OVMS has no such metrics)."""

    def __init__(self, manager, families: tuple[str, ...]) -> None:
        self.manager = manager
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            "genai_requests_running": ("Requests being processed now", "running"),
            "genai_requests_waiting": ("Requests waiting for a slot", "waiting"),
            "genai_kv_cache_usage_percent": ("KV cache usage at the last step (percent)", "kv_cache_usage_percent"),
            "genai_kv_cache_bytes": ("KV cache memory allocated by the pipeline (bytes)", "kv_cache_bytes"),
        }
        stats = {d.name: d.engine.stats() for d in self.manager.deployments()}
        for family, (doc, attr) in gauges.items():
            if family not in self.families:
                continue
            gauge = GaugeMetricFamily(family, doc, labels=["name"])
            for name, value in stats.items():
                if hasattr(value, attr):
                    gauge.add_metric([name], float(getattr(value, attr)))
            yield gauge
        counters = {
            "genai_batches": ("Batched inferences run by embeddings / rerank engines", "batches"),
            "genai_batch_items": ("Inputs inferred in those batches", "items"),
            "genai_speculative_steps": ("Speculative decoding steps (per sequence, after the prefill)",
                                        "speculative_steps"),
            "genai_speculative_accepted_tokens": ("Draft tokens accepted (tokens generated - steps)",
                                                  "speculative_accepted_tokens"),
            "genai_speculative_draft_tokens": ("Draft tokens asked for (num_assistant_tokens per step)",
                                               "speculative_draft_tokens"),
            "genai_admission_batches": ("Times the LLM engine admitted new requests before a step",
                                        "admission_batches"),
            "genai_admitted_requests": ("Requests admitted in those batches", "admitted_requests"),
            "genai_lora_adapter_switches": ("Times the pipeline switched LoRA adapter (after draining a group)",
                                            "lora_adapter_switches"),
        }
        for family, (doc, attr) in counters.items():
            if family not in self.families:
                continue
            counter = CounterMetricFamily(family, doc, labels=["name"])
            for name, value in stats.items():
                if hasattr(value, attr):
                    counter.add_metric([name], float(getattr(value, attr)))
            yield counter


class LoadedCollector:
    """`ovms_graph_loaded{name}`: 1 loaded, 0 configured but not loaded (on demand, unloaded, idle), as
    OVMS docs/idle_servable_management.md reports its graphs."""

    def __init__(self, manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("ovms_graph_loaded", "1 when the model is loaded, 0 when it is not", labels=["name"])
        for deployment in self.manager.deployments():
            gauge.add_metric([deployment.name], 1.0)
        for spec, _reason in self.manager.parked():
            gauge.add_metric([spec.name], 0.0)
        yield gauge


class ArbiterCollector:
    """The device arbiter's lanes: units run, time waited and busy, units queued and running now."""

    COUNTERS = {
        "genai_arbiter_units": ("Units of work granted the device", "units"),
        "genai_arbiter_wait_seconds": ("Time units waited for the device", "wait_seconds"),
        "genai_arbiter_busy_seconds": ("Time units held the device", "busy_seconds"),
    }
    GAUGES = {
        "genai_arbiter_queued": ("Units waiting for the device now", "waiting"),
        "genai_arbiter_running": ("Units holding the device now", "running"),
    }

    def __init__(self, families: tuple[str, ...]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        from scheduler import arbiter

        lanes = arbiter.current().lanes()
        for family, (doc, attr) in {**self.COUNTERS, **self.GAUGES}.items():
            if family not in self.families:
                continue
            metric = Metric(family, doc, "counter" if family in self.COUNTERS else "gauge")
            for lane in lanes:
                metric.add_sample(family, {"name": lane.name, "kind": lane.kind}, float(getattr(lane.stats, attr)))
            yield metric


class ImageEngineCollector:
    """Image engine counters read at scrape time: denoising steps run, images delivered, requests cancelled."""

    COUNTERS = {
        "genai_image_steps": ("Denoising steps run", "steps_total"),
        "genai_images_generated": ("Images delivered", "images_total"),
        "genai_image_requests_cancelled": ("Image requests stopped because their client went away",
                                           "cancelled_total"),
    }

    def __init__(self, manager, families: tuple[str, ...]) -> None:
        self.manager = manager
        self.families = families

    def collect(self) -> Iterator[Metric]:
        stats = {d.name: d.engine.stats() for d in self.manager.deployments()}
        for family, (doc, attr) in self.COUNTERS.items():
            if family not in self.families:
                continue
            metric = Metric(family, doc, "counter")  # sample named like the family, as the OVMS counters
            for name, value in stats.items():
                if hasattr(value, attr):
                    metric.add_sample(family, {"name": name}, float(getattr(value, attr)))
            yield metric


@router.get("/metrics", response_class=PlainTextResponse, responses={
    200: {"description": "Prometheus text exposition format"},
    400: {"description": "Metrics are disabled (--metrics_enable)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}})
async def metrics(request: Request) -> Response:
    recorder: Metrics | None = getattr(request.app.state, "metrics", None)
    if recorder is None:
        return JSONResponse(openai_error("Metrics are disabled; start with --metrics_enable", "invalid_request_error"),
                            status_code=400)
    return Response(recorder.exposition(), media_type=CONTENT_TYPE_LATEST)
