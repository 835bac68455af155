"""JSON schema -> a compact EBNF grammar (no free whitespace), for the schemas it can express exactly.

xgrammar's own JSON-schema grammar allows any whitespace between tokens, and small models then
spiral into newlines until `max_tokens` cuts the JSON (invalid). This converter emits JSON in
`json.dumps` style (`{"a": 1, "b": [2, 3]}`), every declared property present, in schema order.
It returns None for schema features it cannot guarantee (pattern, format, numeric bounds ...);
the caller then falls back to xgrammar's converter.
"""
from __future__ import annotations

import json
from typing import Any

MAX_DIGITS = 15


class Unsupported(Exception):
    pass


_BASE = r'''
json_string ::= "\"" json_char* "\""
json_char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] )
json_integer ::= "-"? json_uint
json_uint ::= "0" | [1-9] [0-9]{0,14}
json_number ::= json_integer ( "." [0-9]{1,15} )? ( [eE] [+-]? [0-9]{1,3} )?
json_boolean ::= "true" | "false"
json_null ::= "null"
json_value ::= json_object | json_array | json_string | json_number | json_boolean | json_null
json_object ::= "{" ( json_string ": " json_value ( ", " json_string ": " json_value )* )? "}"
json_array ::= "[" ( json_value ( ", " json_value )* )? "]"
'''

_ALLOWED = {"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum",
            "const", "anyOf", "oneOf", "$ref", "$defs", "definitions", "title", "description", "default",
            "minLength", "maxLength", "examples", "strict", "$schema", "minimum", "exclusiveMinimum", "maximum"}
MAX_ENUMERATED = 256


def _small_range(schema: dict[str, Any]) -> bool:
    low, high = schema["minimum"], schema["maximum"]
    return isinstance(low, int) and isinstance(high, int) and 0 <= high - low < MAX_ENUMERATED


def _literal(text: str) -> str:
    return json.dumps(text)  # an EBNF string literal uses the same escapes as JSON


class _Converter:
    def __init__(self, root: dict[str, Any]):
        self.root = root
        self.rules: dict[str, str] = {}
        self.refs: dict[str, str] = {}

    def rule(self, schema: Any, hint: str) -> str:
        """Name of a rule matching `schema` (adds rules as needed)."""
        body = self.expr(schema, hint)
        if body.isidentifier():
            return body
        name = f"r{len(self.rules)}_{hint}"[:40]
        self.rules[name] = body
        return name

    def expr(self, schema: Any, hint: str) -> str:
        if schema is True or schema == {}:
            return "json_value"
        if not isinstance(schema, dict):
            raise Unsupported("schema is not an object")
        unknown = set(schema) - _ALLOWED
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return _literal(json.dumps(schema["const"], ensure_ascii=False))
        if "enum" in schema:
            return " | ".join(_literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " | ".join(self.rule(s, f"{hint}_{i}") for i, s in enumerate(schema[key]))
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.rule({**schema, "type": k}, f"{hint}_{k}") for k in kind)
        if kind == "string":
            low, high = schema.get("minLength", 0), schema.get("maxLength")
            if not low and high is None:
                return "json_string"
            return f'"\\"" json_char{{{low},{high if high is not None else ""}}} "\\""'
        if kind == "integer" and {"minimum", "maximum"} <= set(schema) and _small_range(schema):
            return " | ".join(_literal(str(v)) for v in range(schema["minimum"], schema["maximum"] + 1))
        if kind in ("integer", "number"):
            minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
            if "maximum" in schema:
                raise Unsupported("numeric bounds")
            if minimum is not None and not (minimum == 0 and "exclusiveMinimum" not in schema):
                raise Unsupported("numeric bounds")
            if kind == "integer":
                return "json_uint" if minimum == 0 else "json_integer"
            if minimum == 0:
                raise Unsupported("numeric bounds")
            return "json_number"
        if kind == "boolean":
            return "json_boolean"
        if kind == "null":
            return "json_null"
        if kind == "array":
            return self.array(schema, hint)
        if kind == "object" or "properties" in schema:
            return self.object(schema, hint)
        if kind is None:
            return "json_value"
        raise Unsupported(f"type {kind!r}")

    def ref(self, ref: str) -> str:
        if ref in self.refs:
            return self.refs[ref]
        parts = ref.split("/")
        if parts[0] != "#" or len(parts) != 3 or parts[1] not in ("$defs", "definitions"):
            raise Unsupported(f"$ref {ref}")
        target = self.root.get(parts[1], {}).get(parts[2])
        if target is None:
            raise Unsupported(f"unresolved $ref {ref}")
        name = f"d{len(self.refs)}_" + "".join(c for c in parts[2] if c.isalnum())[:30]
        self.refs[ref] = name
        self.rules[name] = self.expr(target, name)
        return name

    def array(self, schema: dict[str, Any], hint: str) -> str:
        item = self.rule(schema.get("items", True), f"{hint}_item")
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if high is not None and high == 0:
            return '"[]"'
        rest_low = max(low - 1, 0)
        rest_high = "" if high is None else str(high - 1)
        body = f'{item} ( ", " {item} ){{{rest_low},{rest_high}}}'
        return f'"[" {body} "]"' if low > 0 else f'"[" ( {body} )? "]"'

    def object(self, schema: dict[str, Any], hint: str) -> str:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", True)
        if not properties:
            if extra is False:
                return '"{}"'
            if extra not in (True, {}):
                raise Unsupported("additionalProperties schema")
            return "json_object"
        parts = []
        for key, sub in properties.items():
            value = self.rule(sub, f"{hint}_{''.join(c for c in key if c.isalnum())[:12]}")
            parts.append(f'{_literal(json.dumps(key, ensure_ascii=False) + ": ")} {value}')
        return '"{" ' + ' ", " '.join(parts) + ' "}"'


def compact_grammar(schema: dict[str, Any]) -> str | None:
    """An EBNF grammar (root rule `root`) for `schema`, or None when the schema needs xgrammar's converter."""
    converter = _Converter(schema)
    try:
        root = converter.expr(schema, "root")
    except (Unsupported, TypeError, AttributeError, KeyError, ValueError):
        return None
    rules = [f"root ::= {root}"] + [f"{name} ::= {body}" for name, body in converter.rules.items()]
    return "\n".join(rules) + _BASE
