"""What does the Anthropic Messages front cost next to chat/completions on the same engine?

Starts the server on the default SmolLM2 and sends the same greedy request through
`/v3/chat/completions` (the baseline) and `/v1/messages`, interleaved, unary and streamed; prints the
median latency, the median time to the first text delta, output tokens, and the ratio to the
baseline measured in the same run.

    python bench/messages_overhead.py [--repeats 10] [--tokens 64]
"""
from __future__ import annotations

import argparse
import json
import time

import httpx
from common import median, print_table  # noqa: E402  (also puts the repo on sys.path)

from tests.server import ServerProcess  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROMPT = [{"role": "user", "content": "Tell me a story about a dragon and a knight."}]


def chat_body(tokens: int, stream: bool) -> dict:
    return {"model": MODEL, "messages": PROMPT, "max_tokens": tokens, "temperature": 0, "stream": stream,
            "stream_options": {"include_usage": True} if stream else None}


def messages_body(tokens: int, stream: bool) -> dict:
    return {"model": MODEL, "messages": PROMPT, "max_tokens": tokens, "temperature": 0, "stream": stream}


def first_text(line: str, api: str) -> bool:
    if not line.startswith("data:") or "[DONE]" in line:
        return False
    data = json.loads(line[5:])
    if api == "chat":
        return bool(data.get("choices") and data["choices"][0]["delta"].get("content"))
    return data.get("type") == "content_block_delta"


def timed(http: httpx.Client, api: str, tokens: int, stream: bool) -> tuple[float, float]:
    """(total seconds, seconds to the first text delta; = total when unary)."""
    path, body = ("/v3/chat/completions", chat_body(tokens, stream)) if api == "chat" else \
        ("/v1/messages", messages_body(tokens, stream))
    body = {k: v for k, v in body.items() if v is not None}
    start = time.perf_counter()
    if not stream:
        http.post(path, json=body).raise_for_status()
        total = time.perf_counter() - start
        return total, total
    first = None
    with http.stream("POST", path, json=body) as response:
        for line in response.iter_lines():
            if first is None and first_text(line, api):
                first = time.perf_counter() - start
    return time.perf_counter() - start, first or float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    server = ServerProcess(log_name="bench-messages").start()
    try:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
            for api in ("chat", "messages"):
                timed(http, api, args.tokens, False)  # warm-up
            for _ in range(args.repeats):
                for stream in (False, True):
                    for api in ("chat", "messages"):
                        results.setdefault((api, stream), []).append(timed(http, api, args.tokens, stream))
        rows = []
        for stream in (False, True):
            base = median([t for t, _ in results[("chat", stream)]])
            for api in ("chat", "messages"):
                totals = [t for t, _ in results[(api, stream)]]
                firsts = [f for _, f in results[(api, stream)]]
                rows.append([api, "stream" if stream else "unary", median(totals) * 1000,
                             median(firsts) * 1000 if stream else "-", median(totals) / base])
        print(f"{args.repeats} interleaved requests each, greedy, max_tokens {args.tokens}")
        print_table(["api", "mode", "median ms", "first text ms", "x chat"], rows)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
