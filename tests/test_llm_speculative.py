"""Speculative decoding (prompt lookup, draft models) on a real server with tiny fp32 Llama models.

Greedy output must not change with speculation: the same model is served plain, with prompt lookup,
with itself as draft (every draft token is accepted) and with an unrelated draft (most are rejected).
"""
from __future__ import annotations

import json

import openai
import pytest

from tests.fake_hub import FakeHub
from tests.fixtures_llm_ir import tiny_llama_ir
from tests.helpers import F32, metric_value, scrape, write_config
from tests.server import ServerProcess

BASE, LOOKUP, SELF_DRAFT, OTHER_DRAFT = "plain", "lookup", "self-draft", "other-draft"
SPECULATIVE = (LOOKUP, SELF_DRAFT, OTHER_DRAFT)
# n-grams repeat, so prompt lookup has something to propose
PROMPT = ("Repeat: The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. "
          "Count to ten: one two three four five. The quick brown fox")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model, other = tiny_llama_ir(1), tiny_llama_ir(2)
    entries = [
        {"name": BASE, "base_path": str(model), "plugin_config": F32},
        {"name": LOOKUP, "base_path": str(model), "plugin_config": F32, "prompt_lookup": True},
        {"name": SELF_DRAFT, "base_path": str(model), "plugin_config": F32, "draft_model": str(model)},
        {"name": OTHER_DRAFT, "base_path": str(model), "plugin_config": F32, "draft_model": str(other)},
    ]
    path = write_config(tmp_path_factory.mktemp("speculative") / "config.json", entries)
    process = ServerProcess("--config_path", str(path), "--metrics_enable", log_name="speculative").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)


def _chat(client, model: str, **kwargs) -> openai.types.chat.ChatCompletion:
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 40, "temperature": 0, **kwargs}
    return client.chat.completions.create(model=model, **body)


@pytest.fixture(scope="module")
def plain(client) -> openai.types.chat.chat_completion.Choice:
    choice = _chat(client, BASE).choices[0]
    assert len(choice.message.content) > 20
    return choice


@pytest.fixture(scope="module")
def plain_text(plain) -> str:
    return plain.message.content


@pytest.mark.parametrize("model,extra", [
    (LOOKUP, {}), (LOOKUP, {"num_assistant_tokens": 3, "max_ngram_size": 2}), (SELF_DRAFT, {}),
    (OTHER_DRAFT, {"num_assistant_tokens": 4}), (OTHER_DRAFT, {"assistant_confidence_threshold": 0.3}),
])
def test_greedy_output_is_unchanged_by_speculation(client, plain_text, model, extra):
    assert _chat(client, model, extra_body=extra).choices[0].message.content == plain_text


@pytest.mark.parametrize("model", SPECULATIVE)
def test_streamed_speculative_output_equals_the_plain_output(client, plain, model):
    chunks = list(_chat(client, model, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.message.content
    assert chunks[-1].choices[0].finish_reason == plain.finish_reason


@pytest.mark.parametrize("model", SPECULATIVE)
def test_stop_strings_cut_speculative_output_where_plain_output_is_cut(client, plain_text, model):
    stop = plain_text[len(plain_text) // 2:][:4]
    expected = _chat(client, BASE, stop=[stop]).choices[0]
    got = _chat(client, model, stop=[stop], stream=True)
    chunks = list(got)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.message.content
    assert expected.finish_reason == chunks[-1].choices[0].finish_reason == "stop"


def test_structured_output_works_with_prompt_lookup_and_is_a_400_with_a_draft(client):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 8}}, "required": ["answer"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    plain, lookup = (_chat(client, m, response_format=fmt, max_tokens=60).choices[0] for m in (BASE, LOOKUP))
    assert lookup.message.content == plain.message.content and set(json.loads(plain.message.content)) == {"answer"}
    with pytest.raises(openai.BadRequestError) as info:  # a draft model with a grammar crashes openvino_genai
        _chat(client, SELF_DRAFT, response_format=fmt)
    assert info.value.body["param"] == "response_format"


def test_metrics_count_accepted_draft_tokens(client, server):
    def counters(model: str) -> tuple[float, float, float]:
        text = scrape(server)
        return tuple(metric_value(text, f"genai_speculative_{n}", name=model)
                     for n in ("steps", "accepted_tokens", "draft_tokens"))

    before = {m: counters(m) for m in (SELF_DRAFT, OTHER_DRAFT)}
    for model in (SELF_DRAFT, OTHER_DRAFT):
        _chat(client, model, extra_body={"num_assistant_tokens": 4, "ignore_eos": True}, max_tokens=33)
    delta = {m: [a - b for a, b in zip(counters(m), before[m], strict=True)] for m in before}
    steps, accepted, drafted = delta[SELF_DRAFT]
    assert accepted + steps == 32  # 33 tokens, the first one from the prefill
    assert drafted == 4 * steps and accepted >= 0.75 * drafted  # a model drafting for itself is always right
    steps, accepted, drafted = delta[OTHER_DRAFT]
    assert accepted + steps == 32 and accepted < 0.5 * drafted


@pytest.mark.parametrize("model,extra,param", [
    (BASE, {"num_assistant_tokens": 3}, "num_assistant_tokens"),
    (BASE, {"max_ngram_size": 3}, "max_ngram_size"),
    (LOOKUP, {"assistant_confidence_threshold": 0.5}, "assistant_confidence_threshold"),
    (SELF_DRAFT, {"max_ngram_size": 3}, "max_ngram_size"),
    (SELF_DRAFT, {"num_assistant_tokens": 3, "assistant_confidence_threshold": 0.5}, "assistant_confidence_threshold"),
    (LOOKUP, {"num_assistant_tokens": 0}, "num_assistant_tokens"),
    (LOOKUP, {"num_assistant_tokens": "3"}, "num_assistant_tokens"),
    (LOOKUP, {"max_ngram_size": 100}, "max_ngram_size"),
    (SELF_DRAFT, {"assistant_confidence_threshold": 1.5}, "assistant_confidence_threshold"),
    (SELF_DRAFT, {"best_of": 2}, "best_of"),
    (LOOKUP, {"n": 2, "temperature": 1.0}, "n"),
])
def test_what_speculation_cannot_do_is_a_400_naming_the_field(client, plain_text, model, extra, param):
    with pytest.raises(openai.BadRequestError) as info:
        _chat(client, model, extra_body=extra)
    assert info.value.body["param"] == param
    assert _chat(client, model).choices[0].message.content == plain_text  # and the server keeps serving


def test_sampling_works_with_speculation(client):
    first = _chat(client, SELF_DRAFT, temperature=1.0, seed=3).choices[0].message.content
    assert first and first == _chat(client, SELF_DRAFT, temperature=1.0, seed=3).choices[0].message.content


def test_completions_take_the_speculative_fields(client, plain_text):
    kwargs = dict(prompt=PROMPT, max_tokens=20, temperature=0)
    plain = client.completions.create(model=BASE, **kwargs).choices[0].text
    assert client.completions.create(model=LOOKUP, extra_body={"max_ngram_size": 2}, **kwargs).choices[0].text == plain
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=BASE, extra_body={"num_assistant_tokens": 2}, **kwargs)
    assert info.value.body["param"] == "num_assistant_tokens"


def test_a_pulled_draft_serves_beside_a_pulled_model(plain_text, tmp_path):
    hub = FakeHub()
    hub.add_repo("test-org/tiny-ir", tiny_llama_ir(1))
    hub.add_repo("test-org/tiny-draft", tiny_llama_ir(2))
    hub.start()
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    server = ServerProcess("--source_model", "test-org/tiny-ir", "--draft_source_model", "test-org/tiny-draft",
                           "--model_repository_path", str(tmp_path / "models"), "--plugin_config", json.dumps(F32),
                           env=env, log_name="speculative-pull")
    try:
        server.start()
        assert (tmp_path / "models/test-org/tiny-draft/openvino_model.xml").is_file()
        client = openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
        assert client.models.retrieve("test-org/tiny-ir").model_extra["speculative_decoding"] == "draft_model"
        assert _chat(client, "test-org/tiny-ir", extra_body={"num_assistant_tokens": 3}).choices[0].message.content \
            == plain_text
    finally:
        server.stop()
        hub.stop()
