"""Option parsing for speculative decoding, LoRA adapters (LLM and image) and the KV cache."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from servables.config_file import ConfigError
from servables.image_options import ImageOptions
from servables.llm_options import LLMOptions
from servables.lora import parse_cli
from servables.speculative import draft_path


@pytest.mark.parametrize("options", [{"prompt_lookup": True, "draft_model": "d"},
                                     {"draft_model": "d", "draft_source_model": "org/d"},
                                     {"prompt_lookup": "yes"}])
def test_conflicting_or_mistyped_speculative_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        LLMOptions.from_dict(options)


def test_draft_folders_resolve_from_the_model_or_the_repository(tmp_path, monkeypatch):
    model = tmp_path / "repo" / "org" / "main"
    assert draft_path(LLMOptions.from_dict({"draft_model": "../draft"}), model) == model / "../draft"
    monkeypatch.delenv("OVMS_MODEL_REPOSITORY_PATH", raising=False)
    assert draft_path(LLMOptions.from_dict({"draft_source_model": "org/small"}), model) == tmp_path / "repo/org/small"
    monkeypatch.setenv("OVMS_MODEL_REPOSITORY_PATH", "/models")
    assert draft_path(LLMOptions.from_dict({"draft_source_model": "org/small"}), model) == Path("/models/org/small")


@pytest.mark.parametrize("adapters", [
    [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}], [{"name": "a:b", "path": "x"}],
    [{"name": "a", "path": "x", "alpha": "1"}], [{"name": "a"}], ["a=x"],
])
def test_malformed_adapter_lists_are_config_errors(adapters):
    with pytest.raises(ConfigError):
        LLMOptions.from_dict({"lora_adapters": adapters})


def test_the_cli_form_is_name_equals_path_with_an_optional_alpha():
    assert parse_cli(["a=/x/y", "b=/x:z:0.5", "c=C:/w"]) == [
        {"name": "a", "path": "/x/y"}, {"name": "b", "path": "/x:z", "alpha": 0.5}, {"name": "c", "path": "C:/w"}]


@pytest.mark.parametrize("value", ["i8", "U8", 8])
def test_unknown_kv_cache_precisions_are_config_errors(value):
    with pytest.raises(ConfigError):
        LLMOptions.from_dict({"kv_cache_precision": value})


@pytest.mark.parametrize("value,fragment", [
    ({"start_size": 32, "recent_size": 32, "max_cache_size": 16}, "max_cache_size > (start_size + recent_size)"),
    ({"start_size": 32, "recent_size": 32}, "max_cache_size"),
    ({"start_size": 32, "recent_size": 32, "max_cache_size": 128, "mode": "sum"}, "unknown key"),
    ({"start_size": 32, "recent_size": 32, "max_cache_size": 128, "aggregation_mode": "max"}, "aggregation_mode"),
])
def test_malformed_cache_eviction_is_a_config_error_saying_why(value, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        LLMOptions.from_dict({"cache_eviction": value})


@pytest.mark.parametrize("value", ["a", "a=", "=x", "a=x,a=y", "a:b=x"])
def test_malformed_source_loras_are_config_errors(value):
    with pytest.raises(ConfigError):
        ImageOptions.from_dict({"source_loras": value})


def test_lora_adapters_and_speculative_decoding_do_not_mix():
    with pytest.raises(ConfigError, match="lora_adapters"):
        LLMOptions.from_dict({"prompt_lookup": True, "lora_adapters": [{"name": "a", "path": "x"}]})
