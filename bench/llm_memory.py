"""Does the process grow per request inside openvino_genai's ContinuousBatchingPipeline itself?

No HTTP, no engine thread, no asyncio: the default LLM's servable prepares chat jobs (template,
tokens, generation config as the server builds them) and this script drives the pipeline with
`add_request` / `step` / `read`, `--concurrency` requests at a time, cancelling every
`--cancel-every`-th request after two reads (0: none), as bench/soak.py's clients do over HTTP.
Prints, every 100 requests, RSS, the bytes malloc has handed out and not had back (mallinfo2: live
allocations, unlike RSS blind to fragmentation) and the KV cache pool, and the RSS growth per 100
requests after the first 100 (the baseline: the KV cache and the allocator's pools have grown to
this load by then).

    python bench/llm_memory.py                         # 1000 requests, 32 at a time, a third cancelled
    python bench/llm_memory.py --cancel-every 0        # none cancelled
    python bench/llm_memory.py --greedy                # temperature 0 instead of OpenAI's default 1
    python bench/llm_memory.py --concurrency 8 --greedy --cancel-every 0   # plateaus (README "Memory over time")
    python bench/llm_memory.py --option enable_prefix_caching=false --option cache_size=1
    python bench/llm_memory.py --id-space 1024         # reuse pipeline request ids (no difference)
    python bench/llm_memory.py --cpu-shape-caches off  # flat (README "Memory over time")
"""
from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys
from pathlib import Path

from common import print_table  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _json_or_text(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def malloc_in_use_mb() -> float:
    """Bytes glibc's malloc has handed out and not had back, all arenas and mmapped chunks (man 3 mallinfo2)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cancel-every", type=int, default=3, help="cancel every N-th request after 2 reads; 0: none")
    parser.add_argument("--greedy", action="store_true", help="temperature 0 (default: the server's default, 1.0)")
    parser.add_argument("--id-space", type=int, default=0,
                        help="give the pipeline request ids modulo N (ids reused); 0: a new id per request")
    parser.add_argument("--cpu-shape-caches", choices=["on", "off"], default="on",
                        help="as serve's --cpu_shape_caches (off: CPU runtime cache and oneDNN primitive cache off)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an LLM node option (README: KV cache options), the value as JSON, e.g. cache_size=1")
    args = parser.parse_args()
    options = {key: _json_or_text(value) for key, _, value in (o.partition("=") for o in args.option)}

    from servables import shape_caches

    shape_caches.configure(args.cpu_shape_caches == "on")  # as `serve` does, before OpenVINO builds anything
    import openvino_genai as ov_genai

    from servables.llm import LLMServable
    from servables.sampling import SamplingParams
    from servables.sources import default_llm_spec

    servable = LLMServable(default_llm_spec(options))
    servable.load()
    pipe = servable.pipeline
    rng = random.Random(0)
    live: dict[int, list] = {}  # request id -> [handle, reads]
    series: list[float] = []
    in_use: list[float] = []  # malloc'ed and not freed, MB
    kv: list[float] = []  # the KV cache pool (PipelineMetrics.kv_cache_size_in_bytes), MB
    done = next_id = 0
    while done < args.requests:
        while len(live) < args.concurrency:
            params = SamplingParams(max_tokens=rng.randint(4, 24), stream=True,
                                    temperature=0.0 if args.greedy else None)
            job = servable.prepare_chat([{"role": "user", "content": f"Tell me about {rng.random()}"}], params)
            pipeline_id = next_id % args.id_space if args.id_space else next_id
            live[next_id] = [pipe.add_request(pipeline_id, job.input_tensor(), job.config), 0]
            next_id += 1
        pipe.step()
        for request_id in list(live):
            handle = live[request_id][0]
            if handle.can_read():
                handle.read()
                live[request_id][1] += 1
            if args.cancel_every and request_id % args.cancel_every == 0 and live[request_id][1] >= 2:
                handle.cancel()
            elif handle.get_status() == ov_genai.GenerationStatus.RUNNING:
                continue
            del live[request_id]
            done += 1
            if done % 100 == 0:
                series.append(rss_mb())
                in_use.append(malloc_in_use_mb())
                kv.append(pipe.get_metrics().kv_cache_size_in_bytes / 2**20)
    for handle, _ in live.values():  # leave the pipeline clean
        handle.cancel()
    while pipe.has_non_finished_requests():
        pipe.step()

    per_100 = (series[-1] - series[0]) / max(len(series) - 1, 1)
    print_table(["requests", "RSS MB", "malloc in use MB", "KV cache MB"],
                [[100 * (i + 1), rss, in_use[i], kv[i]] for i, rss in enumerate(series)])
    print(f"\ncpu shape caches {args.cpu_shape_caches}, options {options or 'default'}; "
          f"concurrency {args.concurrency}, "
          f"cancel every {args.cancel_every or 'none'}, "
          f"{'greedy' if args.greedy else 'sampling'}: RSS {series[0]:.0f} MB after 100 requests (baseline), "
          f"{series[-1]:.0f} MB after {args.requests}; {per_100:+.1f} MB per 100 requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
