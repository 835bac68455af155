"""Prometheus exposition. Engine state is read at scrape time by a custom collector."""
from __future__ import annotations

from typing import Iterator

from fastapi import APIRouter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

router = APIRouter()


class EngineCollector:
    """Per-model engine gauges (an extension: OVMS has no such metrics, vLLM operators expect them)."""

    def __init__(self, manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running = GaugeMetricFamily("genai_requests_running", "Requests being generated now", labels=["name"])
        waiting = GaugeMetricFamily("genai_requests_waiting", "Requests waiting for a slot", labels=["name"])
        cache = GaugeMetricFamily("genai_kv_cache_usage_percent", "KV cache usage at the last step (percent)",
                                  labels=["name"])
        for name, engine in self.manager.scheduler.engines().items():
            stats = engine.stats()
            running.add_metric([name], stats.running)
            waiting.add_metric([name], stats.waiting)
            if hasattr(stats, "kv_cache_usage_percent"):
                cache.add_metric([name], stats.kv_cache_usage_percent)
        yield running
        yield waiting
        yield cache


class ImageEngineCollector:
    """Counters of the image engines: denoising steps run, images delivered, requests cancelled."""

    def __init__(self, manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[CounterMetricFamily]:
        steps = CounterMetricFamily("genai_image_steps", "Denoising steps run", labels=["name"])
        images = CounterMetricFamily("genai_images_generated", "Images delivered", labels=["name"])
        cancelled = CounterMetricFamily("genai_image_requests_cancelled",
                                        "Image requests stopped because their client went away", labels=["name"])
        for name, engine in self.manager.scheduler.engines().items():
            stats = engine.stats()
            if hasattr(stats, "steps_total"):
                steps.add_metric([name], stats.steps_total)
                images.add_metric([name], stats.images_total)
                cancelled.add_metric([name], stats.cancelled_total)
        yield steps
        yield images
        yield cancelled


def build_registry(manager) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(EngineCollector(manager))
    registry.register(ImageEngineCollector(manager))
    return registry


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        return JSONResponse({"error": {"message": "Metrics are disabled; start with --metrics_enable",
                                       "type": "invalid_request_error", "param": None, "code": None}},
                            status_code=400)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
