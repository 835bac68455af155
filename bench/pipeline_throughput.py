"""Two questions about the classic side, each against its baseline in the same run (KServe gRPC,
tritonclient):

1. A two-node pipeline (`add` then `mul`, served as `add_mul`) vs the client calling both models
   in sequence itself: requests/s and p50/p99, concurrency 1 and 4.
2. `ModelStreamInfer` (one stream per client, up to 8 requests in flight on it) vs unary
   `ModelInfer` on the same model: messages/s.

    python bench/pipeline_throughput.py [--seconds 3]

The models are the tests' onnx.helper models (tests/fixtures_pipeline.py); one request = batch 1x4.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tensor_throughput import race, run  # noqa: E402
from tests.fixtures_pipeline import ADD_MUL, pipeline_config  # noqa: E402
from tests.fixtures_tensor import fp32_inputs, start_grpc_server  # noqa: E402

A = np.array([[1, 2, 3, 4]], dtype=np.float32)


def _inputs(**arrays):
    import tritonclient.grpc as grpcclient

    return fp32_inputs(grpcclient, **arrays)


def _client(server):
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def pipeline_call(server):
    def make():
        client, inputs = _client(server), _inputs(a=A, b=A, c=A)
        return lambda: client.infer("add_mul", inputs)
    return make


def sequential_calls(server):
    """The baseline: the client runs `add`, then feeds its output to `mul`."""
    def make():
        client, first = _client(server), _inputs(a=A, b=A)

        def call():
            total = client.infer("add", first).as_numpy("sum")
            client.infer("mul", _inputs(x=total, factor=A))
        return call
    return make


def unary_add(server):
    def make():
        client, inputs = _client(server), _inputs(a=A, b=A)
        return lambda: client.infer("add", inputs)
    return make


def stream_messages(server, concurrency: int, seconds: float, window: int = 8) -> float:
    """Responses/s over `concurrency` streams, each keeping up to `window` requests in flight."""
    counts = [0] * concurrency
    stop_at = [0.0]
    ready = threading.Barrier(concurrency + 1)

    def worker(i: int) -> None:
        client, inputs = _client(server), _inputs(a=A, b=A)
        slots = threading.Semaphore(window)

        def on_response(result, error):
            if error is None:
                counts[i] += 1
            slots.release()

        client.start_stream(callback=on_response)
        for _ in range(20):  # warm-up
            slots.acquire()
            client.async_stream_infer("add", inputs)
        ready.wait()
        counts[i] = 0
        while time.perf_counter() < stop_at[0]:
            slots.acquire()
            client.async_stream_infer("add", inputs)
        client.stop_stream()
        client.close()

    began = race(worker, concurrency, seconds, ready, stop_at)
    return sum(counts) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_grpc_server(pipeline_config(Path(tmp), [ADD_MUL]), "bench-pipeline")
        try:
            rows = []
            for concurrency in (1, 4):
                base = run(sequential_calls(server), concurrency, args.seconds)
                rows.append(("add, then mul (client)", concurrency, *base, 1.0))
                rps, p50, p99 = run(pipeline_call(server), concurrency, args.seconds)
                rows.append(("pipeline add_mul", concurrency, rps, p50, p99, rps / base[0]))
            streams = []
            for concurrency in (1, 4):
                unary = run(unary_add(server), concurrency, args.seconds)[0]
                streamed = stream_messages(server, concurrency, args.seconds)
                streams.append((concurrency, unary, streamed, streamed / unary))
        finally:
            server.stop()
    print(f"{'path (KServe gRPC)':26} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
    for label, concurrency, rps, p50, p99, ratio in rows:
        print(f"{label:26} {concurrency:>4} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>7.3f}")
    print()
    print(f"{'model add':26} {'conc':>4} {'unary/s':>9} {'stream/s':>9} {'ratio':>7}")
    for concurrency, unary, streamed, ratio in streams:
        print(f"{'ModelStreamInfer vs unary':26} {concurrency:>4} {unary:>9.0f} {streamed:>9.0f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
