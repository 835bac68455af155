"""Prompt-lookup speculative decoding through the server: single-stream tokens/s with and without it.

One server serves the default SmolLM2 GGUF twice: plain, and with `prompt_lookup: true`. Two
workloads, run alternately on both models in the same run: `echo` (rewrite a given ~90-word passage:
the output repeats the prompt's n-grams) and `free` (a story: little to look up). Greedy, fixed
`max_tokens`; prints tokens/s per model and workload, the ratio lookup/plain, and whether the outputs
were identical (they must be).

    .venv/bin/python bench/speculative.py [--tokens 128] [--repeats 3] [--num-assistant-tokens 5] [--max-ngram-size 3]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
from common import median, print_table  # noqa: E402  (also puts the repo on sys.path)

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

PASSAGE = ("The lighthouse keeper climbed the narrow stairs every evening at dusk, carrying a small lamp and a "
           "notebook. From the top he could see the harbour, the fishing boats returning with their catch, and "
           "the long line of the coast fading into the mist. He wrote down the wind, the colour of the sea and "
           "the names of the boats that passed, because his father had done the same for forty years, and "
           "because nobody else would remember them if he did not.")
WORKLOADS = {
    "echo": f"Rewrite the following passage exactly, word for word:\n\n{PASSAGE}",
    "free": "Write a long story about a robot who learns to paint.",
}
PLAIN, LOOKUP = "plain", "lookup"


def run_once(client: httpx.Client, model: str, prompt: str, tokens: int, extra: dict) -> tuple[float, int, str]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": tokens,
            "temperature": 0, **extra}
    start = time.perf_counter()
    response = client.post("/v3/chat/completions", json=body)
    wall = time.perf_counter() - start
    response.raise_for_status()
    data = response.json()
    return wall, data["usage"]["completion_tokens"], data["choices"][0]["message"]["content"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-assistant-tokens", type=int, default=5)
    parser.add_argument("--max-ngram-size", type=int, default=3)
    parser.add_argument("--exact", action="store_true",
                        help="DYNAMIC_QUANTIZATION_GROUP_SIZE=0 on both models: identical greedy outputs, slower")
    args = parser.parse_args()

    gguf = str(packaged_gguf(DEFAULT_LLM_PACKAGE))
    # The CPU plugin quantizes activations of compressed-weight matmuls per call by default (dynamic
    # quantization): the validation of 5 drafted tokens at once rounds differently from 5 one-token
    # steps, and greedy outputs part after a few hundred characters. Without it they are identical
    # (in process: 75 -> 54 tok/s single stream, so it is not the server's default).
    plugin = {"plugin_config": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}} if args.exact else {}
    entries = [{"name": PLAIN, "base_path": gguf, **plugin},
               {"name": LOOKUP, "base_path": gguf, "prompt_lookup": True, **plugin}]
    config = Path(tempfile.mkdtemp(prefix="bench-speculative-")) / "config.json"
    config.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    server = ServerProcess("--config_path", str(config), log_name="bench-speculative").start()
    extra = {LOOKUP: {"num_assistant_tokens": args.num_assistant_tokens, "max_ngram_size": args.max_ngram_size},
             PLAIN: {}}
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for model in (PLAIN, LOOKUP):  # warm-up
                run_once(client, model, "Hi", 8, extra[model])
            rows, ratios = [], []
            for workload, prompt in WORKLOADS.items():
                rates: dict[str, list[float]] = {PLAIN: [], LOOKUP: []}
                texts: dict[str, str] = {}
                for _ in range(args.repeats):
                    for model in (PLAIN, LOOKUP):
                        wall, count, text = run_once(client, model, prompt, args.tokens, extra[model])
                        rates[model].append(count / wall)
                        texts[model] = text
                same = texts[PLAIN] == texts[LOOKUP]
                if not same:
                    common = next((i for i, (a, b) in enumerate(zip(texts[PLAIN], texts[LOOKUP], strict=False))
                                   if a != b), min(len(texts[PLAIN]), len(texts[LOOKUP])))
                    print(f"{workload}: outputs differ from character {common}: "
                          f"{texts[PLAIN][common:common + 40]!r} vs {texts[LOOKUP][common:common + 40]!r}")
                for model in (PLAIN, LOOKUP):
                    rows.append([workload, model, median(rates[model]), "yes" if same else "NO"])
                ratios.append((workload, median(rates[LOOKUP]) / median(rates[PLAIN])))
        print(f"\nSmolLM2-135M Q4_1 GGUF through the server{' (exact)' if args.exact else ''}, single stream, greedy, "
              f"{args.tokens} tokens, "
              f"num_assistant_tokens {args.num_assistant_tokens}, max_ngram_size {args.max_ngram_size}, "
              f"median of {args.repeats}")
        print_table(["workload", "model", "out tok/s", "same output"], rows)
        print()
        for workload, ratio in ratios:
            print(f"{workload}: prompt lookup / plain = {ratio:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
