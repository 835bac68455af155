"""Where the server's CPU goes per gRPC call: ServerLive (no model) against ModelInfer on the tests'
`dense` model (x [1,4] -> y [1,3]), split by thread, from /proc/<pid>/task/*/stat.

The server is pinned to the first core and `h2load` (bench/native_load.py) to the second; rounds
alternate the two calls and medians are printed. The split says which part of the difference is
ours: the event loop thread runs our servicer, the decoding, the inline inference and grpc.aio's
Python side; `event_engine` threads are gRPC's C core; other threads are grpc.aio's poller and
OpenVINO's. Thread CPU is counted in clock ticks (10 ms), so keep runs of a few seconds.

    python bench/grpc_overhead.py [--seconds 3] [--rounds 3] [--concurrency 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import native_load as native  # noqa: E402
from tests.fixtures_tensor import start_tensor_server  # noqa: E402

SERVICE = "/inference.GRPCInferenceService"


def thread_ticks(pid: int) -> dict[str, int]:
    """CPU clock ticks so far per thread group: the event loop (the main thread), gRPC's C core, others."""
    groups = {"event loop": 0, "gRPC core": 0, "other threads": 0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        group = "event loop" if task.name == str(pid) else "gRPC core" if comm == "event_engine" else "other threads"
        groups[group] += int(fields[11]) + int(fields[12])
    return groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import service_pb2 as pb  # the KServe v2 messages (ours clash in one process)

    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    messages = {"ServerLive": pb.ServerLiveRequest().SerializeToString(),
                "ModelInfer": pb.ModelInferRequest(model_name="dense", inputs=[pb.ModelInferRequest.InferInputTensor(
                    name="x", datatype="FP32", shape=[1, 4])], raw_input_contents=[x.tobytes()]).SerializeToString()}
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    per_call: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_tensor_server(Path(tmp), "bench-grpc-overhead")
        try:
            pid = server.proc.pid
            cores = native.cores()
            generator = None
            if len(cores) >= 2:
                native.pin_process(pid, cores[:1])
                generator = cores[1]
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
            for _ in range(50):  # warm up; the tensor engine measures the model before running it inline
                client.infer("dense", [grpcclient.InferInput("x", [1, 4], "FP32").set_data_from_numpy(x)])
            for _ in range(args.rounds):
                for method, message in messages.items():
                    before = thread_ticks(pid)
                    result = native.h2load_grpc("127.0.0.1", server.grpc_port, f"{SERVICE}/{method}", message,
                                                args.concurrency, 1, args.seconds, generator, pid)
                    after = thread_ticks(pid)
                    if result.errors:
                        raise RuntimeError(f"{method}: {result.errors} failed calls")
                    for group, ticks in after.items():
                        per_call.setdefault((method, group), []).append(
                            (ticks - before[group]) * tick_us / max(1, result.requests))
        finally:
            server.stop()
    groups = ["event loop", "gRPC core", "other threads"]
    print(f"server CPU us per call, by thread (medians of {args.rounds} rounds, concurrency {args.concurrency})")
    print(f"{'call':12}" + "".join(f"{g:>15}" for g in groups) + f"{'total':>10}")
    totals = {}
    for method in messages:
        values = [statistics.median(per_call[(method, g)]) for g in groups]
        totals[method] = sum(values)
        print(f"{method:12}" + "".join(f"{v:>15.1f}" for v in values) + f"{totals[method]:>10.1f}")
    print(f"ModelInfer - ServerLive: {totals['ModelInfer'] - totals['ServerLive']:.1f} us per call; "
          f"cpu ratio ServerLive / ModelInfer = {totals['ServerLive'] / totals['ModelInfer']:.3f}")


if __name__ == "__main__":
    main()
