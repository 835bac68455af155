"""Operations: exact metrics after known traffic, API key, CORS, body limits, request ids, shutdown."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

from tests.conftest import LLM
from tests.helpers import metric_samples, metric_value, scrape, wait_for, write_config
from tests.server import ROOT, ServerProcess, free_port

KEY = "s3cret-key"
MSG = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory):
    key_file = tmp_path_factory.mktemp("ops") / "key.txt"
    key_file.write_text(KEY + "\n")
    server = ServerProcess("--metrics_enable", "--api_key_file", str(key_file), "--allowed_origins",
                           "http://app.example", "--max_request_bytes", "200000", log_name="ops").start()
    yield server
    server.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_metrics_count_exactly_the_traffic_sent(ops_server):
    client = openai.OpenAI(base_url=f"{ops_server.url}/v3", api_key=KEY, max_retries=0)
    prompt_tokens = completion_tokens = 0
    for _ in range(3):
        r = client.chat.completions.create(model=LLM, messages=MSG, max_tokens=5, temperature=0)
        prompt_tokens += r.usage.prompt_tokens
        completion_tokens += r.usage.completion_tokens
    streamed_events = 0
    for _ in range(2):
        with httpx.stream("POST", f"{ops_server.url}/v3/chat/completions", headers=auth(), timeout=60, json={
                "model": LLM, "messages": MSG, "max_tokens": 6, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    streamed_events += 1
                    if '"usage":{' in line:
                        usage = json.loads(line[6:])["usage"]
                        prompt_tokens += usage["prompt_tokens"]
                        completion_tokens += usage["completion_tokens"]
    bad = httpx.post(f"{ops_server.url}/v3/chat/completions", headers=auth(), timeout=60,
                     json={"model": LLM, "messages": MSG, "temperature": 5})
    assert bad.status_code == 400

    text = scrape(ops_server)

    def m(family: str, **labels: str) -> float:
        return metric_value(text, family, name=LLM, **labels)

    unary = {"api": "V3", "interface": "REST", "method": "Unary"}
    stream = {"api": "V3", "interface": "REST", "method": "Stream"}
    assert m("ovms_requests_accepted", **unary) == 4
    assert m("ovms_graph_error", **unary) == 1
    assert m("ovms_responses", **unary) == 3
    assert m("ovms_requests_accepted", **stream) == 2
    assert m("ovms_responses", **stream) == streamed_events
    assert m("ovms_graph_processing_time_us_count", method="Unary") == 3
    assert m("ovms_current_graphs") == 0
    assert m("genai_prompt_tokens") == prompt_tokens
    assert m("genai_generation_tokens") == completion_tokens
    assert m("genai_time_to_first_token_seconds_count") == 5
    assert m("genai_requests_running") == 0
    buckets = [s.labels["le"] for s in metric_samples(text) if s.name == "ovms_graph_processing_time_us_bucket"
               and s.labels["method"] == "Unary" and s.labels["name"] == LLM]  # the default server also serves MiniLM
    assert len(buckets) == 34  # OVMS's 33 bounds + Inf
    assert "1.474755971e+09" in buckets and "+Inf" in buckets
    # the exposition keeps OVMS's counter names (no `_total` suffix)
    assert f'ovms_requests_accepted{{api="V3",interface="REST",method="Unary",name="{LLM}"}} 4.0' in text


def test_api_key_is_required_on_generative_endpoints(ops_server):
    bad = openai.OpenAI(base_url=f"{ops_server.url}/v3", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=LLM, messages=MSG, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model=LLM, prompt="hi", max_tokens=2)
    raw = httpx.post(f"{ops_server.url}/v1/chat/completions", json={"model": LLM, "messages": MSG})
    assert raw.status_code == 401
    assert raw.json()["error"]["message"] == "Unauthorized request due to invalid or missing api-key"
    assert httpx.get(f"{ops_server.url}/v3/models").status_code == 200  # listing is not protected, as in OVMS
    good = openai.OpenAI(base_url=f"{ops_server.url}/v3", api_key=KEY, max_retries=0)
    assert good.chat.completions.create(model=LLM, messages=MSG, max_tokens=2).choices


def test_cors_preflight_and_origin_header(ops_server):
    r = httpx.options(f"{ops_server.url}/v3/chat/completions", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    other = httpx.options(f"{ops_server.url}/v3/chat/completions", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_oversized_deep_and_traversal_requests_are_refused_and_server_keeps_serving(ops_server):
    url = f"{ops_server.url}/v3/chat/completions"
    huge = httpx.post(url, headers=auth(), json={"model": LLM, "messages": [{"role": "user", "content": "x" * 300000}]})
    assert huge.status_code == 413 and huge.json()["error"]["type"] == "invalid_request_error"
    deep = httpx.post(url, headers={**auth(), "Content-Type": "application/json"},
                      content=b'{"model": "m", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert deep.status_code == 400 and "nested deeper" in deep.json()["error"]["message"]
    raw = subprocess.run(["curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                          f"{ops_server.url}/v3/../etc/passwd"], capture_output=True, text=True, timeout=30)
    assert raw.stdout == "400"
    ok = httpx.post(url, headers=auth(), json={"model": LLM, "messages": MSG, "max_tokens": 2}, timeout=60)
    assert ok.status_code == 200


def test_request_id_is_echoed_or_generated_and_logged(ops_server):
    r = httpx.post(f"{ops_server.url}/v3/chat/completions", headers={**auth(), "x-request-id": "abc-123"},
                   json={"model": LLM, "messages": MSG, "max_tokens": 2}, timeout=60)
    assert r.headers["x-request-id"] == "abc-123"
    generated = httpx.get(f"{ops_server.url}/v3/models").headers["x-request-id"]
    assert len(generated) == 32

    def access_record(request_id: str) -> dict | None:
        records = [json.loads(line.split("genai_gateway.access: ", 1)[1]) for line in ops_server.log().splitlines()
                   if "genai_gateway.access: " in line]
        return next((rec for rec in records if rec["request_id"] == request_id), None)

    record = wait_for(lambda: access_record("abc-123"), 10, message="the access log line of request abc-123")
    assert record["model"] == LLM and record["status"] == 200 and record["completion_tokens"] == 2
    assert record["prompt_tokens"] > 0 and record["latency_ms"] > 0


@pytest.mark.slow
def test_metrics_are_off_by_default_and_bad_family_stops_startup(tmp_path):
    plain = ServerProcess("--config_path", str(write_config(tmp_path / "config.json", [])),
                          log_name="nometrics").start()  # no models: only the HTTP front matters here
    try:
        r = httpx.get(f"{plain.url}/metrics")
        assert r.status_code == 400 and "--metrics_enable" in r.json()["error"]["message"], r.text
    finally:
        plain.stop()
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--rest_port", str(free_port()),
                           "--metrics_enable", "--metrics_list", "ovms_bogus"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "Metrics family name not supported: ovms_bogus" in proc.stderr


@pytest.mark.slow
def test_sigterm_lets_streams_finish_and_exits_zero():
    server = ServerProcess(log_name="sigterm")
    # start, and see liveness before readiness while the model loads
    log = open(server.log_path, "w")
    server.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", *server.args], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
    seen_live_not_ready = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code
            live = httpx.get(f"{server.url}/v2/health/live", timeout=2).status_code
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if live == 200 and ready == 503:
            seen_live_not_ready = True
        if ready == 200:
            break
        time.sleep(0.05)
    assert seen_live_not_ready

    async def stream(client, started: asyncio.Semaphore):
        text, finish, first = "", None, True
        async with client.stream("POST", "/v3/chat/completions", json={
                "model": LLM, "messages": MSG, "max_tokens": 60, "ignore_eos": True, "stream": True}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choice = (json.loads(line[6:])["choices"] or [{}])[0]
                    text += choice.get("delta", {}).get("content") or ""
                    finish = choice.get("finish_reason") or finish
                    if first and choice.get("delta", {}).get("content"):
                        first = False
                        started.release()  # this stream is generating
        return finish, text

    async def run():
        started = asyncio.Semaphore(0)
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            tasks = [asyncio.create_task(stream(client, started)) for _ in range(8)]
            for _ in tasks:  # every stream has produced text before the signal
                await asyncio.wait_for(started.acquire(), 120)
            running = [not task.done() for task in tasks]
            server.proc.send_signal(signal.SIGTERM)
            return running, await asyncio.gather(*tasks)

    running, results = asyncio.run(run())
    assert [finish for finish, _ in results] == ["length"] * 8
    assert all(text for _, text in results)
    assert any(running), "every stream finished before SIGTERM: nothing was drained"
    assert server.proc.wait(60) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
