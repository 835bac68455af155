"""`inference_precision`: validation, and the properties the pipeline is built with."""
from __future__ import annotations

import pytest

from gateway.cli import build_parser
from servables.config_file import ConfigError
from servables.llm_options import LLMOptions
from servables.messages import reason_of


@pytest.mark.parametrize("value", ["fp32", "F32", "u8", 32, "auto"])
def test_unknown_inference_precisions_are_config_errors(value):
    with pytest.raises(ConfigError, match="inference_precision"):
        LLMOptions.from_dict({"inference_precision": value})


def test_an_option_contradicting_plugin_config_is_a_config_error_naming_both():
    with pytest.raises(ConfigError, match="inference_precision.*INFERENCE_PRECISION_HINT"):
        LLMOptions.from_dict({"inference_precision": "bf16", "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}})


@pytest.mark.parametrize("options,hint", [
    ({}, "f32"),
    ({"inference_precision": "bf16"}, "bf16"),
    ({"plugin_config": {"INFERENCE_PRECISION_HINT": "bf16"}}, "bf16"),
    ({"inference_precision": "f16", "plugin_config": {"INFERENCE_PRECISION_HINT": "f16"}}, "f16"),
    ({"inference_precision": "plugin"}, None),
])
def test_the_pipeline_gets_the_precision_hint(options, hint):
    properties = LLMOptions.from_dict(options).pipeline_properties()
    assert properties.get("INFERENCE_PRECISION_HINT") == hint


def test_the_cli_flag_takes_the_same_values():
    args = build_parser().parse_args(["serve", "--inference_precision", "bf16"])
    assert args.inference_precision == "bf16"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--inference_precision", "fp64"])


def test_a_load_error_names_its_reason_not_where_it_was_raised():
    error = RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\n"
                         "Exception from src/inference/src/dev/plugin.cpp:54:\n"
                         "Check 'key_cache_type == ov::element::bf16' failed at executor_pa.cpp:2847:\n"
                         "expect kvcache type bf16, current: f32 , f32\n\n")
    assert reason_of(error).endswith("expect kvcache type bf16, current: f32 , f32")
