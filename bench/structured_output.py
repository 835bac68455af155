"""What does constrained decoding cost? Time per output token, unconstrained vs constrained.

Runs SmolLM2 in-process on a ContinuousBatchingPipeline (greedy, one request at a time, up to
--tokens new tokens; time is divided by the tokens actually produced) and prints medians and the ratio to the
unconstrained baseline measured in the same run. Also times the grammar validator.

    python bench/structured_output.py [--repeats 5] [--tokens 64]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openvino_genai as ov_genai  # noqa: E402

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf  # noqa: E402
from servables.structured_output import GrammarValidator, S, json_constraint  # noqa: E402

SCHEMA = {"type": "object", "properties": {"items": {"type": "array", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "count": {"type": "integer"}}}}}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    pipe = ov_genai.ContinuousBatchingPipeline(str(packaged_gguf(DEFAULT_LLM_PACKAGE)), ov_genai.SchedulerConfig(),
                                               "CPU")
    tok = pipe.get_tokenizer()
    prompt = tok.apply_chat_template([{"role": "user", "content": "List groceries as JSON."}],
                                     add_generation_prompt=True)
    variants = {
        "unconstrained": None,
        "compact grammar (ours)": lambda: json_constraint(SCHEMA),
        "xgrammar json_schema": lambda: S(json_schema=json.dumps(SCHEMA)),
    }
    ids = iter(range(10**6))

    def run(make) -> float:
        cfg = pipe.get_config()
        cfg.max_new_tokens, cfg.apply_chat_template, cfg.do_sample = args.tokens, False, False
        if make is not None:
            cfg.structured_output_config = make()
        start = time.perf_counter()
        handle = pipe.add_request(next(ids), prompt, cfg)
        while pipe.has_non_finished_requests():
            pipe.step()
        produced = len(handle.read_all()[0].generated_ids)
        return (time.perf_counter() - start) / max(produced, 1) * 1000

    for make in variants.values():  # warm-up
        run(make)
    results = {name: statistics.median(run(make) for _ in range(args.repeats)) for name, make in variants.items()}
    base = results["unconstrained"]
    print(f"{'variant':<26}{'ms/token (median)':>20}{'ratio':>8}")
    for name, value in results.items():
        print(f"{name:<26}{value:>20.2f}{value / base:>8.2f}")

    validator = GrammarValidator(tok, pipe.get_config().eos_token_id)
    times = []
    for i in range(args.repeats):
        schema = {"type": "object", "properties": {f"field{i}": SCHEMA}}  # a new grammar each time: no cache hit
        start = time.perf_counter()
        validator.check(json_constraint(schema), "response_format")
        times.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    validator.check(json_constraint({"type": "object", "properties": {"field0": SCHEMA}}), "response_format")
    cached = (time.perf_counter() - start) * 1000
    print(f"validator: new schema {statistics.median(times):.2f} ms (median), cached {cached:.3f} ms")


if __name__ == "__main__":
    main()
