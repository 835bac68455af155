"""`response_format` -> `openvino_genai.StructuredOutputConfig`, and a validator that compiles it.

A grammar that xgrammar cannot compile must never reach the serving pipeline: it fails inside
`ContinuousBatchingPipeline.step()` and leaves the pipeline unusable for every later request.
`GrammarValidator` compiles each constraint first on a throw-away `LLMPipeline` built from a tiny
zero-logits model and the served model's own tokenizer (about 1 ms per check), so a bad schema
is a 400 for its request only.
"""
from __future__ import annotations

import json
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai as ov_genai
from openvino import opset13 as ops

from .errors import InvalidRequest
from .json_grammar import compact_grammar

S = ov_genai.StructuredOutputConfig
VALIDATOR_VOCAB = 2**18  # logits wider than any vocabulary: the grammar mask only needs to fit in them


def from_response_format(response_format: dict[str, Any] | None) -> ov_genai.StructuredOutputConfig | None:
    """OpenAI `response_format` (chat, completions) or Responses `text.format` to a constraint."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return json_constraint({"type": "object"})
    if kind == "json_schema":
        # chat: {"json_schema": {"name", "schema", "strict"}}; Responses: {"name", "schema", "strict"}
        holder = response_format.get("json_schema", response_format)
        if not isinstance(holder, dict):
            raise InvalidRequest("response_format.json_schema must be an object", "response_format")
        schema = holder.get("schema", {"type": "object"} if "json_schema" not in response_format else None)
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema must be a JSON schema object",
                                 "response_format")
        return json_constraint(schema)
    if kind == "regex":  # extension, as vLLM's guided_regex
        return S(regex=_string(response_format, "regex"))
    if kind == "grammar":  # extension: an EBNF grammar
        return S(grammar=_string(response_format, "grammar"))
    raise InvalidRequest(
        f"response_format.type must be one of text, json_object, json_schema, regex, grammar; got {kind!r}",
        "response_format",
    )


def json_constraint(schema: dict[str, Any]) -> ov_genai.StructuredOutputConfig:
    """Compact JSON for the schema: our whitespace-free grammar when it can express it, else xgrammar's."""
    grammar = compact_grammar(schema)
    return S(grammar=grammar) if grammar is not None else S(json_schema=json.dumps(schema))


def json_element(schema: dict[str, Any]):
    """The same, as an element of a structural tag (`S.Tag` content)."""
    grammar = compact_grammar(schema)
    return S.EBNF(grammar) if grammar is not None else S.JSONSchema(json.dumps(schema))


def _string(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"response_format.{key} must be a non-empty string", "response_format")
    return value


def _zero_logits_model(vocab_size: int) -> tuple[str, ov.Tensor]:
    """A stateless 'LLM' whose logits are all zero: enough for GenAI to compile grammars."""
    names = (("input_ids", ov.Type.i64, [-1, -1]), ("attention_mask", ov.Type.i64, [-1, -1]),
             ("position_ids", ov.Type.i64, [-1, -1]), ("beam_idx", ov.Type.i32, [-1]))
    params = []
    for name, dtype, shape in names:
        param = ops.parameter(shape, dtype, name=name)
        param.output(0).set_names({name})
        params.append(param)
    shape = ops.concat([ops.shape_of(params[0]), ops.constant(np.array([vocab_size], dtype=np.int64))], 0)
    logits = ops.broadcast(ops.constant(np.float32(0)), shape)
    logits.output(0).set_names({"logits"})
    model = ov.Model([ops.result(logits)], params, "grammar_validator")
    with tempfile.TemporaryDirectory() as tmp:
        ov.save_model(model, Path(tmp) / "m.xml")
        text = (Path(tmp) / "m.xml").read_text()
        weights = np.fromfile(Path(tmp) / "m.bin", dtype=np.uint8)
    return text, ov.Tensor(weights if weights.size else np.zeros(1, dtype=np.uint8))


class GrammarValidator:
    """Compiles constraints against the served tokenizer; remembers the ones that compiled."""

    def __init__(self, tokenizer: ov_genai.Tokenizer, eos_token_id: int, cache_size: int = 256):
        xml, weights = _zero_logits_model(VALIDATOR_VOCAB)
        config = ov_genai.GenerationConfig()
        config.max_new_tokens = 1
        config.eos_token_id = eos_token_id
        self._pipe = ov_genai.LLMPipeline(xml, weights, tokenizer, "CPU", config)
        self._lock = threading.Lock()
        self._ok: OrderedDict[str, None] = OrderedDict()
        self._cache_size = cache_size

    def check(self, constraint: ov_genai.StructuredOutputConfig, param: str) -> None:
        key = _key(constraint)
        with self._lock:
            if key in self._ok:
                self._ok.move_to_end(key)
                return
            config = self._pipe.get_generation_config()
            config.max_new_tokens = 1
            config.apply_chat_template = False
            config.structured_output_config = constraint
            try:
                self._pipe.generate("a", config)
            except Exception as exc:
                raise InvalidRequest(f"Cannot compile the {param} constraint: {_reason(exc)}", param) from exc
            self._ok[key] = None
            if len(self._ok) > self._cache_size:
                self._ok.popitem(last=False)


def _key(constraint: ov_genai.StructuredOutputConfig) -> str:
    parts = [str(getattr(constraint, name, None)) for name in ("json_schema", "regex", "grammar")]
    parts.append(repr(getattr(constraint, "structural_tags_config", None)))
    return "\x00".join(parts)


def _reason(exc: Exception) -> str:
    """xgrammar prefixes messages with a timestamp and a build path: keep the readable tail."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if ".cc:" in line:
        line = line.split(".cc:", 1)[1].split(":", 1)[-1].strip()
    return line
