"""Chat and completions through the real openai SDK against the real server and SmolLM2."""
from __future__ import annotations

import asyncio

import openai
import pytest

from tests.conftest import LLM

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_greedy_chat_answers_paris_with_consistent_usage(client):
    r = client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=30)
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.id.startswith("chatcmpl-") and r.created > 0 and r.model == LLM
    assert r.usage.prompt_tokens > 10
    assert 0 < r.usage.completion_tokens <= 30
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streamed_chat_equals_unary_for_greedy_requests(client):
    unary = client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=40)
    stream = client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=40, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == unary.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == unary.choices[0].finish_reason


def test_v1_prefix_serves_the_same_api(llm_server):
    v1 = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="unused")
    r = v1.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=20)
    assert "Paris" in r.choices[0].message.content
    assert LLM in [m.id for m in v1.models.list().data]  # next to the default embedding model
    assert v1.models.retrieve(LLM).id == LLM


def test_async_client_streaming_and_unary(llm_server):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{llm_server.url}/v3", api_key="unused")
        unary = await client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=25)
        stream = await client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=25,
                                                      stream=True, stream_options={"include_usage": True})
        pieces, usage = [], None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage:
                usage = chunk.usage
        await client.close()
        return unary, "".join(pieces), usage

    unary, streamed, usage = asyncio.run(run())
    assert streamed == unary.choices[0].message.content
    assert usage.completion_tokens == unary.usage.completion_tokens
    assert usage.prompt_tokens == unary.usage.prompt_tokens


def test_completions_unary_and_stream_agree(client):
    unary = client.completions.create(model=LLM, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0)
    assert unary.choices[0].text.startswith(" 5, 6")
    assert unary.choices[0].finish_reason == "length"
    assert unary.usage.completion_tokens == 12
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=LLM, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stream=True) if c.choices)
    assert streamed == unary.choices[0].text


def test_completions_echo_and_logprobs(client):
    r = client.completions.create(model=LLM, prompt="1, 2, 3,", max_tokens=4, temperature=0, echo=True, logprobs=1)
    choice = r.choices[0]
    assert choice.text.startswith("1, 2, 3,") and len(choice.text) > len("1, 2, 3,")
    assert len(choice.logprobs.tokens) == 4 == len(choice.logprobs.token_logprobs)
    assert all(lp is None or lp <= 0 for lp in choice.logprobs.token_logprobs)
    assert "".join(choice.logprobs.tokens) == choice.text[len("1, 2, 3,"):]


def test_chat_logprobs_cover_every_token(client):
    r = client.chat.completions.create(model=LLM, messages=QUESTION, temperature=0, max_tokens=8, logprobs=True)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert "".join(t.token for t in content) == r.choices[0].message.content


def test_stop_string_is_cut_and_not_leaked_in_streaming(client):
    prompt = "1, 2, 3, 4,"
    r = client.completions.create(model=LLM, prompt=prompt, max_tokens=20, temperature=0, stop=[" 7"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == " 5, 6,"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=LLM, prompt=prompt, max_tokens=20, temperature=0, stop=[" 7"], stream=True) if c.choices)
    assert streamed == " 5, 6,"
    kept = client.completions.create(model=LLM, prompt=prompt, max_tokens=20, temperature=0, stop=[" 7"],
                                     extra_body={"include_stop_str_in_output": True})
    assert kept.choices[0].text == " 5, 6, 7"


def test_max_tokens_one_finishes_with_length(client):
    r = client.chat.completions.create(model=LLM, messages=QUESTION, max_tokens=1, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 1


def test_n_two_returns_two_choices(client):
    r = client.chat.completions.create(model=LLM, messages=QUESTION, n=2, temperature=1.0, seed=3, max_tokens=10)
    assert sorted(c.index for c in r.choices) == [0, 1]
    assert all(c.message.content for c in r.choices)
    one = client.chat.completions.create(model=LLM, messages=QUESTION, n=1, temperature=1.0, seed=3, max_tokens=10)
    # usage counts the tokens of both choices
    assert r.usage.completion_tokens > one.usage.completion_tokens
    assert r.usage.prompt_tokens == one.usage.prompt_tokens


def test_streamed_n_two_streams_each_choice_token_by_token_and_reproduces_by_seed(client):
    """openvino_genai releases an n-sequence request's tokens only when all sequences are done; the engine
    generates each streamed choice as its own request, so both choices arrive in many small chunks."""
    def stream(seed):
        pieces: dict[int, list[str]] = {0: [], 1: []}
        usage = None
        for chunk in client.chat.completions.create(
                model=LLM, messages=[{"role": "user", "content": "Write a short poem about the sea."}], n=2,
                temperature=1.0, seed=seed, max_tokens=24, stream=True, stream_options={"include_usage": True}):
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces[choice.index].append(choice.delta.content)
            usage = chunk.usage or usage
        return pieces, usage

    pieces, usage = stream(11)
    assert all(len(parts) >= 4 for parts in pieces.values()), pieces  # not one chunk per choice at the end
    assert "".join(pieces[0]) != "".join(pieces[1])  # each choice samples with its own seed
    assert usage.completion_tokens > 24  # both choices counted
    again, _ = stream(11)
    assert {i: "".join(p) for i, p in again.items()} == {i: "".join(p) for i, p in pieces.items()}


def test_same_seed_reproduces_and_another_seed_differs(client):
    def sample(seed):
        return client.chat.completions.create(
            model=LLM, messages=[{"role": "user", "content": "Write a short poem about the sea."}],
            temperature=1.0, seed=seed, max_tokens=30).choices[0].message.content

    first = sample(1234)
    assert sample(1234) == first
    assert any(sample(seed) != first for seed in (1, 2, 3))


def test_unknown_model_is_404_in_openai_shape(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert err.value.body["message"] == "The model `no-such-model` does not exist"
