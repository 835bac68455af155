"""LLM LoRA adapters on a real server: `<model>:<adapter>` generates with the adapter's weights, the
base model is unchanged, and mixed concurrent traffic never gets the wrong weights."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.fixtures_llm_ir import tiny_llama_ir, tiny_lora
from tests.helpers import F32, metric, metric_samples, scrape, wait_for, write_config
from tests.server import ServerProcess

MODEL, PLAIN, ADAPTER, OTHER = "tiny", "tiny-plain", "style", "half"
TUNED, HALF = f"{MODEL}:{ADAPTER}", f"{MODEL}:{OTHER}"
PROMPTS = ["Tell me a story about a dragon and a knight.", "Count to ten: one two three", "Hello, how are you?"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    entries = [
        {"name": MODEL, "base_path": str(tiny_llama_ir(1)), "plugin_config": F32,
         "lora_adapters": [{"name": ADAPTER, "path": str(tiny_lora()), "alpha": 1.0},
                           {"name": OTHER, "path": str(tiny_lora()), "alpha": 0.5}]},
        {"name": PLAIN, "base_path": str(tiny_llama_ir(1)), "plugin_config": F32},
    ]
    path = write_config(tmp_path_factory.mktemp("lora") / "config.json", entries)
    process = ServerProcess("--config_path", str(path), "--metrics_enable", log_name="lora").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)


def _text(client, model: str, prompt: str, **kwargs) -> str:
    return client.completions.create(model=model, prompt=prompt, max_tokens=24, temperature=0,
                                     extra_body={"ignore_eos": True}, **kwargs).choices[0].text


@pytest.fixture(scope="module")
def solo(client) -> dict[tuple[str, str], str]:
    """Each prompt's greedy output per model id, requested one at a time."""
    return {(m, p): _text(client, m, p) for m in (PLAIN, MODEL, TUNED) for p in PROMPTS}


def _reference(prompt: str) -> str:
    """The adapter's output from openvino_genai's own LLMPipeline, in this process."""
    import openvino_genai as ov_genai

    adapter = ov_genai.Adapter(str(tiny_lora() / "adapter_model.safetensors"))
    pipe = ov_genai.LLMPipeline(str(tiny_llama_ir(1)), "CPU", adapters=ov_genai.AdapterConfig(adapter, 1.0), **F32)
    tokenizer = pipe.get_tokenizer()
    ids = tokenizer.encode(prompt, add_special_tokens=True).input_ids
    cfg = pipe.get_generation_config()
    cfg.max_new_tokens, cfg.min_new_tokens, cfg.do_sample = 24, 24, False
    cfg.apply_chat_template, cfg.adapters = False, ov_genai.AdapterConfig(adapter, 1.0)
    out = pipe.generate(ids, cfg)
    return tokenizer.decode(list(out.tokens[0]), skip_special_tokens=True)


def test_each_adapter_is_listed_as_its_own_model(client):
    models = {m.id: m for m in client.models.list().data}
    assert TUNED in models and models[TUNED].model_extra["base_model"] == MODEL
    assert models[MODEL].model_extra["lora_adapters"] == [OTHER, ADAPTER]


def test_the_adapter_changes_greedy_output_and_matches_openvino_genai(solo):
    for prompt in PROMPTS:
        assert solo[(TUNED, prompt)] != solo[(MODEL, prompt)]
        assert solo[(MODEL, prompt)] == solo[(PLAIN, prompt)]  # the base is the plain model
    assert solo[(TUNED, PROMPTS[0])] == _reference(PROMPTS[0])


def test_mixed_concurrent_requests_each_get_their_own_weights(client, server, solo):
    def switches() -> float:
        return metric(server, "genai_lora_adapter_switches", name=MODEL)

    assert all(solo[(TUNED, p)] != solo[(MODEL, p)] for p in PROMPTS)
    before = switches()
    work = [(m, p) for p in PROMPTS for m in (MODEL, TUNED)] * 2
    with ThreadPoolExecutor(len(work)) as pool:
        results = list(pool.map(lambda item: _text(client, *item), work))
    assert results == [solo[item] for item in work]
    assert switches() > before


def test_streaming_with_an_adapter_equals_unary(client, solo):
    chunks = client.completions.create(model=TUNED, prompt=PROMPTS[1], max_tokens=24, temperature=0, stream=True,
                                       extra_body={"ignore_eos": True})
    assert "".join(c.choices[0].text for c in chunks if c.choices) == solo[(TUNED, PROMPTS[1])]


def test_chat_with_an_adapter_differs_from_the_base(client):
    def chat(model: str) -> str:
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPTS[0]}],
                                              max_tokens=16, temperature=0).choices[0].message.content

    assert chat(TUNED) != chat(MODEL) == chat(PLAIN)


def test_an_unknown_adapter_is_a_404(client):
    with pytest.raises(openai.NotFoundError):
        _text(client, f"{MODEL}:nope", PROMPTS[0])


def lora_info(server) -> tuple[dict[str, str], float]:
    """The one `vllm:lora_requests_info` sample: its labels and value."""
    (sample,) = [s for s in metric_samples(scrape(server)) if s.name == "vllm:lora_requests_info"]
    return sample.labels, sample.value


def _while_one_adapter_runs_and_another_waits(client, server) -> tuple[dict[str, str], float] | None:
    """Stream a long request on TUNED, send one on HALF, and return the gauge once it shows a waiting adapter;
    None if the long request ended first (the tiny model generates 480 tokens in about 0.4 s)."""
    started, stop = threading.Event(), threading.Event()

    def long_stream() -> bool:
        chunks = client.completions.create(model=TUNED, prompt=PROMPTS[0], max_tokens=480, temperature=0,
                                           stream=True, extra_body={"ignore_eos": True})
        for _ in chunks:
            started.set()
            if stop.is_set():
                break
        chunks.close()
        return stop.is_set()  # False: it ran to its end before the gauge was seen

    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(long_stream)
        assert started.wait(60)
        waiting = pool.submit(_text, client, HALF, PROMPTS[1])

        def observed() -> tuple[tuple[dict[str, str], float] | None] | None:
            info = lora_info(server)
            if info[0]["waiting_lora_adapters"]:
                return (info,)
            return (None,) if running.done() else None  # (None,): missed, try again

        try:
            found = wait_for(observed, message="a waiting adapter request")
        finally:
            stop.set()
        running.result(60)
        assert waiting.result(60)
    assert found is not None
    return found[0]


def test_vllm_lora_requests_info_lists_running_and_waiting_adapters(client, server):
    """While a long request on one adapter runs, a request on another adapter waits (the pipeline holds
    one adapter at a time): the gauge the endpoint picker reads for LoRA affinity names both."""
    for _attempt in range(5):
        if (seen := _while_one_adapter_runs_and_another_waits(client, server)) is not None:
            break
    assert seen is not None, "the long request always ended before a scrape"
    labels, value = seen
    assert labels == {"max_lora": "1", "running_lora_adapters": TUNED, "waiting_lora_adapters": HALF}
    assert abs(value - time.time()) < 60  # vLLM's value: the time of the sample
    labels = wait_for(lambda: (info := lora_info(server)[0])["running_lora_adapters"] == ""
                      and info["waiting_lora_adapters"] == "" and info, message="no adapter requests")
    assert labels["max_lora"] == "1"
    assert "model_name" not in labels  # one sample for the server, as in vLLM
