"""Embeddings and rerank throughput through the server, against the pipelines called directly.

Question: does dynamic batching let many concurrent single-text requests get close to what
TextEmbeddingPipeline does with batch 32 in-process? (target: >= 0.8x at 64 clients)

Runs in one go, on the same machine and in the same minute:
  1. baseline: TextEmbeddingPipeline.embed_documents on batches of 32 (MiniLM IR, default precision);
  2. the server (one process, two copies of MiniLM: `batched` with max_batch_size 32 / max_wait_ms 5,
     `unbatched` with max_batch_size 1): 1..64 concurrent clients each sending single-text requests;
     tokens/s, texts/s, p50/p99 latency;
  3. rerank 1 query x 32 documents: documents/s through the server (MiniLM by cosine, and a MiniLM-sized
     cross-encoder with a random head) against TextRerankPipeline called directly.
  4. the batched embeddings and the cross-encoder rerank again with `wrk` (bench/native_load.py), a
     compiled load generator that costs the server's two cores a few percent instead of as much as
     the server: what the server itself sustains. Not pinned: server and direct baseline both get
     both cores, and the generator's share is small.

    python bench/embeddings_throughput.py [--requests-per-level 256] [--levels 1,4,16,32,64]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servables.sources import default_embeddings_dir  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

TOPICS = ["cats", "the stock market", "rain in spring", "old trains", "fresh bread", "chess openings",
          "mountain rivers", "jazz music", "solar panels", "city traffic", "ancient Rome", "coffee beans"]


def make_texts(n: int) -> list[str]:
    return [f"Request {i}: a short sentence about {TOPICS[i % len(TOPICS)]} and what people think of it."
            for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def direct_embeddings(model_dir: Path, texts: list[str], batch: int = 32, rounds: int = 3
                      ) -> tuple[float, float, float]:
    """(texts/s, tokens/s, CPU s/token) of TextEmbeddingPipeline.embed_documents with `batch` texts per call;
    medians over rounds."""
    import openvino_genai as g

    from bench.native_load import cpu_seconds

    config = g.TextEmbeddingPipeline.Config()
    config.pooling_type = g.TextEmbeddingPipeline.PoolingType.MEAN
    config.normalize = True
    config.max_length = 256
    pipe = g.TextEmbeddingPipeline(str(model_dir), "CPU", config)
    tokens = int(g.Tokenizer(str(model_dir)).encode(texts).attention_mask.data.sum())
    pipe.embed_documents(texts[:batch])  # warm-up
    rates = []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), cpu_seconds()
        for i in range(0, len(texts), batch):
            pipe.embed_documents(texts[i:i + batch])
        elapsed = time.perf_counter() - started
        rates.append((len(texts) / elapsed, tokens / elapsed, (cpu_seconds() - cpu) / tokens))
    return tuple(statistics.median(r[k] for r in rates) for k in range(3))


class RawConnection:
    """A minimal keep-alive HTTP/1.1 JSON client: one per simulated user. httpx's pool costs more CPU
    than the server at 64 connections on 2 cores, so it would measure the client, not the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> dict:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        data = json.loads(await self.reader.readexactly(length))
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {data}")
        return data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load_level(url: str, model: str, texts: list[str], concurrency: int) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    tokens = 0
    queue = list(texts)

    async def worker() -> None:
        nonlocal tokens, warmed
        connection = RawConnection(host, int(port))
        await connection.post("/v3/embeddings", {"model": model, "input": "warm up"})
        warmed += 1
        await ready.wait()
        try:
            while queue:
                text = queue.pop()
                started = time.perf_counter()
                response = await connection.post("/v3/embeddings", {"model": model, "input": text,
                                                                    "encoding_format": "base64"})
                latencies.append(time.perf_counter() - started)
                tokens += response["usage"]["prompt_tokens"]
        finally:
            connection.close()

    ready = asyncio.Event()
    warmed = 0
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    while warmed < concurrency and not any(w.done() for w in workers):
        await asyncio.sleep(0.02)  # every user connects and sends one request before the clock starts
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    return {"texts_s": len(texts) / elapsed, "tokens_s": tokens / elapsed,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


def batches(url: str, model: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f'genai_batches_total{{name="{model}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def build_minilm_cross_encoder() -> Path:
    """MiniLM's body with a random 1-logit head: a cross-encoder of realistic size (cached)."""
    import shutil
    import subprocess

    from tests.fixtures_embed import minilm_source
    from tests.model_cache import cached

    def build(out: Path) -> None:
        from transformers import BertForSequenceClassification

        hf = out.parent / "hf"
        BertForSequenceClassification.from_pretrained(str(minilm_source()), num_labels=1).save_pretrained(hf)
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy2(minilm_source() / name, hf / name)
        subprocess.run([sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino", "--model",
                        str(hf), "--task", "text-classification", str(out)], check=True, capture_output=True)

    return cached("minilm-cross-encoder", {"base": "all-MiniLM-L6-v2", "head": "random"}, build)


def rerank_rate(url: str, model: str, query: str, docs: list[str], reps: int) -> float:
    with httpx.Client(base_url=url, timeout=300) as client:
        body = {"model": model, "query": query, "documents": docs}
        client.post("/v1/rerank", json=body).raise_for_status()
        started = time.perf_counter()
        for _ in range(reps):
            client.post("/v1/rerank", json=body).raise_for_status()
        return reps * len(docs) / (time.perf_counter() - started)


def direct_rerank_rate(model_dir: Path, query: str, docs: list[str], reps: int, cpu_out: list | None = None) -> float:
    """documents/s of TextRerankPipeline.rerank; appends CPU s per document to `cpu_out`."""
    import openvino_genai as g

    from bench.native_load import cpu_seconds

    config = g.TextRerankPipeline.Config()
    config.top_n = len(docs)
    pipe = g.TextRerankPipeline(str(model_dir), "CPU", config)
    pipe.rerank(query, docs)
    started, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(reps):
        pipe.rerank(query, docs)
    if cpu_out is not None:
        cpu_out.append((cpu_seconds() - cpu) / (reps * len(docs)))
    return reps * len(docs) / (time.perf_counter() - started)


def wrk_embeddings(url: str, model: str, texts: list[str], concurrency: int, seconds: float,
                   server_pid: int) -> tuple[float, float]:
    """(texts/s, server CPU s per text) of single-text base64 requests from `concurrency` wrk connections."""
    from bench.native_load import wrk

    bodies = [json.dumps({"model": model, "input": t, "encoding_format": "base64"}) for t in texts]
    result = wrk(f"{url}/v3/embeddings", bodies, concurrency, seconds, server_pid=server_pid)
    if result.errors:
        raise RuntimeError(f"wrk: {result.errors} failed embeddings requests")
    return result.requests_s, result.server_cpu_ms / 1000


def wrk_rerank(url: str, model: str, query: str, docs: list[str], seconds: float, server_pid: int
               ) -> tuple[float, float]:
    """(documents/s, server CPU s per document) of sequential rerank requests (one wrk connection)."""
    from bench.native_load import wrk

    result = wrk(f"{url}/v1/rerank", [json.dumps({"model": model, "query": query, "documents": docs})], 1, seconds,
                 server_pid=server_pid)
    if result.errors:
        raise RuntimeError(f"wrk: {result.errors} failed rerank requests")
    return result.requests_s * len(docs), result.server_cpu_ms / 1000 / len(docs)


def mean_tokens(model_dir: Path, texts: list[str]) -> float:
    import openvino_genai as g

    return int(g.Tokenizer(str(model_dir)).encode(texts).attention_mask.data.sum()) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-level", type=int, default=256)
    parser.add_argument("--levels", default="1,4,16,32,64")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are printed")
    parser.add_argument("--rerank-reps", type=int, default=10)
    parser.add_argument("--wrk-seconds", type=float, default=4.0, help="per wrk run (0: no wrk rows)")
    args = parser.parse_args()
    from bench.native_load import available

    use_wrk = args.wrk_seconds > 0 and available("wrk")
    levels = [int(x) for x in args.levels.split(",")]
    minilm = default_embeddings_dir()
    cross_encoder = build_minilm_cross_encoder()
    texts = make_texts(args.requests_per_level)
    docs = make_texts(32)
    query = "What do people think about the stock market?"

    entries = [
        {"name": "batched", "base_path": str(minilm), "task": "embeddings", "max_batch_size": 32, "max_wait_ms": 5},
        {"name": "unbatched", "base_path": str(minilm), "task": "embeddings", "max_batch_size": 1},
        {"name": "cross-encoder", "base_path": str(cross_encoder), "task": "rerank"},
    ]
    config = Path(tempfile.mkdtemp()) / "config.json"
    config.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    server = ServerProcess("--config_path", str(config), "--metrics_enable", "--log_level", "WARNING",
                           log_name="bench-embed").start()
    # The machine is shared and noisy: every round measures everything once, interleaved, and the
    # table shows medians over rounds; the baseline is measured in every round too.
    direct: list[float] = []
    direct_single: list[float] = []
    served: dict[tuple[str, int], list[dict[str, float]]] = {}
    per_inference: dict[tuple[str, int], list[float]] = {}
    rerank: dict[str, list[float]] = {"minilm-cosine": [], "cross-encoder": [], "cross-encoder-direct": []}
    wrk_texts: dict[int, list[float]] = {}
    wrk_ratio: dict[int, list[float]] = {}  # same round: server tokens/s / direct batch-32 tokens/s
    wrk_rerank_rates: list[float] = []
    direct_cpu: list[float] = []  # CPU s per token of the direct batch-32 baseline, per round
    rerank_direct_cpu: list[float] = []
    wrk_cpu_ratio: dict[int, list[float]] = {}  # same round: direct CPU per token / server CPU per token
    wrk_rerank_cpu_ratio: list[float] = []
    wrk_rerank_ratio: list[float] = []
    per_text = mean_tokens(minilm, texts)
    try:
        for _ in range(args.rounds):
            _, tokens_s, cpu_per_token = direct_embeddings(minilm, make_texts(256), rounds=1)
            direct.append(tokens_s)
            direct_cpu.append(cpu_per_token)
            direct_single.append(direct_embeddings(minilm, make_texts(128), batch=1, rounds=1)[1])
            for concurrency in levels:
                for model in ("batched", "unbatched"):
                    before = batches(server.url, model)
                    served.setdefault((model, concurrency), []).append(
                        asyncio.run(load_level(server.url, model, texts, concurrency)))
                    per_inference.setdefault((model, concurrency), []).append(
                        (len(texts) + concurrency) / max(1.0, batches(server.url, model) - before))
            rerank["minilm-cosine"].append(rerank_rate(server.url, "batched", query, docs, args.rerank_reps))
            rerank["cross-encoder"].append(rerank_rate(server.url, "cross-encoder", query, docs, args.rerank_reps))
            rerank["cross-encoder-direct"].append(direct_rerank_rate(cross_encoder, query, docs, args.rerank_reps,
                                                                     rerank_direct_cpu))
            if use_wrk:
                for concurrency in levels:
                    rate, cpu_per_text = wrk_embeddings(server.url, "batched", texts, concurrency, args.wrk_seconds,
                                                        server.proc.pid)
                    wrk_texts.setdefault(concurrency, []).append(rate)
                    wrk_ratio.setdefault(concurrency, []).append(rate * per_text / direct[-1])
                    wrk_cpu_ratio.setdefault(concurrency, []).append(direct_cpu[-1] * per_text / cpu_per_text)
                rate, cpu_per_doc = wrk_rerank(server.url, "cross-encoder", query, docs, args.wrk_seconds,
                                               server.proc.pid)
                wrk_rerank_rates.append(rate)
                wrk_rerank_ratio.append(rate / rerank["cross-encoder-direct"][-1])
                wrk_rerank_cpu_ratio.append(rerank_direct_cpu[-1] / cpu_per_doc)
    finally:
        server.stop()

    base = statistics.median(direct)
    print(f"baseline TextEmbeddingPipeline.embed_documents, batch 32, in-process: {base:.0f} tokens/s "
          f"(median of {len(direct)} rounds: {', '.join(f'{d:.0f}' for d in direct)})")
    print(f"same pipeline, one text per call (what batching can gain over): "
          f"{statistics.median(direct_single):.0f} tokens/s\n")
    print(f"{'model':<10} {'conc':>4} {'texts/s':>8} {'tokens/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'texts/inference':>15} {'vs direct b32':>13}")
    for model in ("batched", "unbatched"):
        for concurrency in levels:
            runs = served[(model, concurrency)]
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(f"{model:<10} {concurrency:>4} {med['texts_s']:>8.0f} {med['tokens_s']:>9.0f} "
                  f"{med['p50_ms']:>8.1f} {med['p99_ms']:>8.1f} "
                  f"{statistics.median(per_inference[(model, concurrency)]):>15.1f} "
                  f"{med['tokens_s'] / base:>12.2f}x")
    ce, ce_direct = statistics.median(rerank["cross-encoder"]), statistics.median(rerank["cross-encoder-direct"])
    print("\nrerank, 1 query x 32 documents, sequential requests (documents/s, medians):")
    print(f"  MiniLM by cosine (server)            {statistics.median(rerank['minilm-cosine']):>6.0f}")
    print(f"  MiniLM-sized cross-encoder (server)  {ce:>6.0f}")
    print(f"  same, TextRerankPipeline direct      {ce_direct:>6.0f}   server/direct {ce / ce_direct:.2f}x")
    if wrk_texts:
        print(f"\nwrk (compiled load generator, {args.wrk_seconds:.0f} s per run), model `batched`, single-text base64 "
              f"requests ({per_text:.1f} tokens/text); ratio = median over rounds of the same round's "
              "server tokens/s / direct batch-32 tokens/s")
        print("cpu ratio = direct CPU s per token / server CPU s per token (the throughput ratio when CPU is the "
              "limit; robust to a loaded machine)")
        print(f"{'conc':>4} {'texts/s':>8} {'tokens/s':>9} {'vs direct b32':>13} {'cpu ratio':>9}")
        for concurrency in levels:
            rate = statistics.median(wrk_texts[concurrency])
            print(f"{concurrency:>4} {rate:>8.0f} {rate * per_text:>9.0f} "
                  f"{statistics.median(wrk_ratio[concurrency]):>12.2f}x "
                  f"{statistics.median(wrk_cpu_ratio[concurrency]):>8.2f}x")
        print(f"rerank 1 x 32 through wrk (1 connection): {statistics.median(wrk_rerank_rates):.0f} documents/s, "
              f"server/direct {statistics.median(wrk_rerank_ratio):.2f}x, "
              f"cpu ratio {statistics.median(wrk_rerank_cpu_ratio):.2f}x")


if __name__ == "__main__":
    main()
