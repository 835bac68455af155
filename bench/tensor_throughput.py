"""Requests/s and p50/p99 latency of one small tensor model over KServe REST, KServe gRPC and TFS REST,
at concurrency 1 and 8, against `openvino` compile_model + infer called directly in the same run.
A gRPC ServerLive row shows the transport's own floor (a call that runs no model).

Then the same with compiled load generators (bench/native_load.py: `wrk` for REST, `h2load` for
gRPC), the server pinned to one core and the generator to the other, rounds interleaved; each infer
is compared with the same transport's no-model call (REST: GET /v2/health/live, gRPC: ServerLive).

    python bench/tensor_throughput.py [--seconds 3] [--rounds 3] [--skip-python]

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

    began = race(worker, concurrency, seconds, start_line, stop_at)  # not inline: the clock would be read first
    elapsed = time.perf_counter() - began
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


INFER_JSON = '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'


def native_rows(server, seconds: float, rounds: int) -> list[tuple]:
    """wrk / h2load rows: median over interleaved rounds; ratio = infer / the transport's no-model call,
    in requests/s and in the server's CPU ms per request (the no-model call's over the infer's)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import service_pb2 as pb  # the same KServe v2 messages (ours clash in one process)

    from bench import native_load as native

    pid = server.proc.pid
    all_cores = native.cores()
    generator_cpu = None
    if len(all_cores) >= 2:  # the server on the first core, the load generator on the second
        native.pin_process(server.proc.pid, all_cores[:1])
        generator_cpu = all_cores[1]
    grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}").infer(  # grpc-status OK, or raise
        "dense", [grpcclient.InferInput("x", [1, 4], "FP32").set_data_from_numpy(X)])
    live = pb.ServerLiveRequest().SerializeToString()
    infer = pb.ModelInferRequest(model_name="dense", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4])], raw_input_contents=[X.astype("<f4").tobytes()]).SerializeToString()
    service = "/inference.GRPCInferenceService"
    calls: dict[tuple[str, int], Callable[[], native.LoadResult]] = {}
    for concurrency in (1, 8):
        calls[("REST GET /v2/health/live (wrk)", concurrency)] = lambda c=concurrency: native.wrk(
            f"{server.url}/v2/health/live", None, c, seconds, generator_cpu, server_pid=pid)
        calls[("KServe REST infer (wrk)", concurrency)] = lambda c=concurrency: native.wrk(
            f"{server.url}/v2/models/dense/infer", [INFER_JSON], c, seconds, generator_cpu, server_pid=pid)
        calls[("gRPC ServerLive (h2load)", concurrency)] = lambda c=concurrency: native.h2load_grpc(
            "127.0.0.1", server.grpc_port, f"{service}/ServerLive", live, c, 1, seconds, generator_cpu, pid)
        calls[("KServe gRPC infer (h2load)", concurrency)] = lambda c=concurrency: native.h2load_grpc(
            "127.0.0.1", server.grpc_port, f"{service}/ModelInfer", infer, c, 1, seconds, generator_cpu, pid)
    results: dict[tuple[str, int], list[native.LoadResult]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            result = call()
            if result.errors:
                raise RuntimeError(f"{key}: {result.errors} failed requests")
            results[key].append(result)
    rows = []
    for (label, concurrency), runs in results.items():
        rps = statistics.median(r.requests_s for r in runs)
        floor_label = "REST GET /v2/health/live (wrk)" if "REST" in label else "gRPC ServerLive (h2load)"
        floors = results[(floor_label, concurrency)]
        ratios = [r.requests_s / f.requests_s for r, f in zip(runs, floors, strict=True)]
        cpu_ratios = [f.server_cpu_ms / r.server_cpu_ms for r, f in zip(runs, floors, strict=True)]
        rows.append((label, concurrency, rps, statistics.median(r.p50_ms for r in runs),
                     statistics.median(r.p99_ms for r in runs), statistics.median(ratios),
                     statistics.median(r.server_cpu_ms for r in runs), statistics.median(cpu_ratios)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the wrk/h2load rows")
    parser.add_argument("--skip-python", action="store_true", help="only the wrk/h2load rows")
    args = parser.parse_args()
    from bench import native_load

    rows = []
    native = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_tensor_server(Path(tmp), "bench-tensor")
        try:
            for concurrency in () if args.skip_python else (1, 8):
                base = run(direct_call(), concurrency, args.seconds)
                rows.append(("openvino direct (ceiling)", concurrency, *base, 1.0))
                for label, factory in (("KServe REST (tritonclient)", kserve_rest),
                                       ("KServe gRPC (tritonclient)", kserve_grpc),
                                       ("TFS REST (httpx)", tfs_rest),
                                       ("gRPC ServerLive (no model)", grpc_live)):
                    rps, p50, p99 = run(factory(server), concurrency, args.seconds)
                    rows.append((label, concurrency, rps, p50, p99, rps / base[0]))
            if native_load.available("wrk") and native_load.available("h2load"):
                native = native_rows(server, args.seconds, args.rounds)  # last: it pins the server to one core
            else:
                print("wrk or h2load missing (apt-get install -y wrk nghttp2-client): compiled-generator rows skipped")
        finally:
            server.stop()
    if rows:
        print("Python clients on the same cores as the server; ratio = req/s / openvino direct")
        print(f"{'path':28} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
        for label, concurrency, rps, p50, p99, ratio in rows:
            print(f"{label:28} {concurrency:>4} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>7.3f}")
    if native:
        print(f"\nwrk / h2load, server pinned to core {native_load.cores()[0]}, generator to the other; medians of "
              f"{args.rounds} interleaved rounds; ratio = infer / the same transport's no-model call "
              "(h2load reports mean and max, shown as p50 and p99); cpu = server CPU ms per request, "
              "cpu ratio = no-model call's cpu / this row's (what the ratio is when the server's core is the limit)")
        print(f"{'path':30} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7} {'cpu ms':>7} "
              f"{'cpu ratio':>9}")
        for label, concurrency, rps, p50, p99, ratio, cpu_ms, cpu_ratio in native:
            print(f"{label:30} {concurrency:>4} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>7.3f} {cpu_ms:>7.3f} "
                  f"{cpu_ratio:>9.3f}")


if __name__ == "__main__":
    main()
