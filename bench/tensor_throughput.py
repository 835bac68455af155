"""Requests/s and p50/p99 latency of one small tensor model over KServe REST, KServe gRPC and TFS REST,
at concurrency 1 and 8, against `openvino` compile_model + infer called directly in the same run.
A gRPC ServerLive row shows the transport's own floor (a call that runs no model).

    python bench/tensor_throughput.py [--seconds 3]

The model is the tests' `dense` ONNX model (x [N,4] -> y [N,3]), one request = batch 1.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures_tensor import dense_repository, start_tensor_server  # noqa: E402

X = np.array([[1, 2, 3, 4]], dtype=np.float32)


def race(worker: Callable[[int], None], concurrency: int, seconds: float, start_line: threading.Barrier,
         stop_at: list[float]) -> float:
    """Start `concurrency` workers, let them off together at `start_line` and stop them `seconds` later
    (`stop_at[0]`, which they check); returns when they have all ended, with the time they were let off."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = float("inf")
    start_line.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    return began


def run(make_call: Callable[[], Callable[[], None]], concurrency: int, seconds: float) -> tuple[float, float, float]:
    """Each worker thread makes its own call (client) and warms it up; returns (requests/s, p50 ms, p99 ms)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    start_line = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        call, own = make_call(), latencies[i]  # tritonclient.http's gevent pool must stay in its thread
        for _ in range(20):
            call()
        start_line.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                return
            call()
            own.append(time.perf_counter() - t0)

    elapsed = time.perf_counter() - race(worker, concurrency, seconds, start_line, stop_at)
    flat = sorted(x for own in latencies for x in own)
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))]
    return len(flat) / elapsed, statistics.median(flat) * 1000, p99 * 1000


def direct_call():
    import openvino as ov

    compiled = ov.Core().compile_model(str(dense_repository() / "3" / "model.onnx"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})

    def make():
        request = compiled.create_infer_request()
        return lambda: request.infer({"x": X})
    return make


def kserve_rest(server):
    import tritonclient.http as httpclient

    def make():
        client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        tensor = httpclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(X, binary_data=False)
        return lambda: client.infer("dense", [tensor])
    return make


def kserve_grpc(server):
    import tritonclient.grpc as grpcclient

    def make():
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        tensor = grpcclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(X)
        return lambda: client.infer("dense", [tensor])
    return make


def tfs_rest(server):
    import httpx

    def make():
        client = httpx.Client(base_url=server.url)
        body = {"instances": X.tolist()}
        return lambda: client.post("/v1/models/dense:predict", json=body).raise_for_status()
    return make


def grpc_live(server):
    """Transport floor: a gRPC call that runs no model."""
    import tritonclient.grpc as grpcclient

    def make():
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        return lambda: client.is_server_live()
    return make


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_tensor_server(Path(tmp), "bench-tensor")
        try:
            rows = []
            for concurrency in (1, 8):
                base = run(direct_call(), concurrency, args.seconds)
                rows.append(("openvino direct (ceiling)", concurrency, *base, 1.0))
                for label, factory in (("KServe REST (tritonclient)", kserve_rest),
                                       ("KServe gRPC (tritonclient)", kserve_grpc),
                                       ("TFS REST (httpx)", tfs_rest),
                                       ("gRPC ServerLive (no model)", grpc_live)):
                    rps, p50, p99 = run(factory(server), concurrency, args.seconds)
                    rows.append((label, concurrency, rps, p50, p99, rps / base[0]))
        finally:
            server.stop()
    print(f"{'path':28} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
    for label, concurrency, rps, p50, p99, ratio in rows:
        print(f"{label:28} {concurrency:>4} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
