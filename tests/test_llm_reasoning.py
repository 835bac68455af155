"""Reasoning split (`--reasoning_parser qwen3`) on SmolLM2, with a template that can open the think block.

SmolLM2 does not think by itself, so the tests force `<think>...</think>answer` shaped output with
a regex `response_format`; the parser, the template kwargs and the API shapes are what is tested.
"""
from __future__ import annotations

import openai
import pytest

from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf
from tests.helpers import F32, write_config
from tests.server import ServerProcess

MODEL = "smol-thinking"
TEMPLATE = """{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking %}<think>
{% endif %}{% endif %}"""
EXPLICIT = {"type": "regex", "regex": "<think>[a-z ]{3,30}</think>[A-Z][a-z ]{3,20}\\."}
IMPLICIT = {"type": "regex", "regex": "[a-z ]{3,30}</think>[A-Z][a-z ]{3,20}\\."}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def thinking_client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thinking")
    (folder / "template.jinja").write_text(TEMPLATE)
    config = write_config(folder / "config.json", [{
        "name": MODEL, "base_path": str(packaged_gguf(DEFAULT_LLM_PACKAGE)), "task": "text_generation",
        "chat_template": str(folder / "template.jinja"), "reasoning_parser": "qwen3", "tool_parser": "hermes",
        "plugin_config": F32}])
    server = ServerProcess("--config_path", str(config), log_name="thinking").start()
    yield openai.OpenAI(base_url=f"{server.url}/v3", api_key="unused", max_retries=0)
    server.stop()


def test_reasoning_content_is_split_out_unary_and_streaming(thinking_client):
    kwargs = dict(model=MODEL, messages=QUESTION, max_tokens=60, temperature=0, response_format=EXPLICIT)
    unary = thinking_client.chat.completions.create(**kwargs).choices[0].message
    reasoning = unary.model_extra["reasoning_content"]
    assert reasoning and "<think>" not in reasoning and "</think>" not in unary.content
    assert unary.content.endswith(".")
    chunks = [c for c in thinking_client.chat.completions.create(stream=True, **kwargs) if c.choices]
    streamed_reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                                 for c in chunks)
    streamed_content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert (streamed_reasoning, streamed_content) == (reasoning, unary.content)


def test_chat_template_kwargs_open_the_think_block_in_the_prompt(thinking_client):
    r = thinking_client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=60, temperature=0,
                                                response_format=IMPLICIT,
                                                extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    message = r.choices[0].message
    assert message.model_extra["reasoning_content"] and message.content.endswith(".")
    plain = thinking_client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=1)
    assert r.usage.prompt_tokens > plain.usage.prompt_tokens  # the template added the <think> opener


def test_responses_api_returns_a_reasoning_item(thinking_client):
    r = thinking_client.responses.create(model=MODEL, input="What is the capital of France?", max_output_tokens=60,
                                         temperature=0, reasoning={"effort": "low"},
                                         text={"format": IMPLICIT})
    kinds = [item.type for item in r.output]
    assert kinds == ["reasoning", "message"]
    assert r.output[0].content[0].text and r.output_text.endswith(".")
    events = list(thinking_client.responses.create(model=MODEL, input="What is the capital of France?",
                                                   max_output_tokens=60, temperature=0, reasoning={"effort": "low"},
                                                   text={"format": IMPLICIT}, stream=True))
    assert "response.reasoning_text.delta" in [e.type for e in events]
    assert [i.type for i in events[-1].response.output] == ["reasoning", "message"]
