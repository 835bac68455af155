"""Config-entry option parsing (LLM, embeddings/rerank, image): types, aliases, limits, messages."""
from __future__ import annotations

import pytest

from servables.config_file import ConfigError
from servables.embedding_options import validate_embeddings, validate_rerank
from servables.image_options import ImageOptions, parse_size
from servables.llm_options import LLMOptions


def test_llm_defaults_and_plugin_config_given_as_json_text():
    assert LLMOptions.from_dict({}) == LLMOptions()
    options = LLMOptions.from_dict({"max_num_seqs": 8, "plugin_config": '{"INFERENCE_PRECISION_HINT": "f32"}'})
    assert options.max_num_seqs == 8 and options.plugin_config == {"INFERENCE_PRECISION_HINT": "f32"}


def test_target_device_is_an_alias_and_the_canonical_name_wins():
    assert LLMOptions.from_dict({"target_device": "GPU"}).device == "GPU"
    assert LLMOptions.from_dict({"device": "CPU", "target_device": "GPU"}).device == "CPU"


@pytest.mark.parametrize("options,fragment", [
    pytest.param({"max_num_seqs": True}, "option 'max_num_seqs' has the wrong type", id="bool-for-int"),
    pytest.param({"enable_prefix_caching": 1}, "option 'enable_prefix_caching' has the wrong type", id="int-for-bool"),
    pytest.param({"max_num_seqs": "8"}, "option 'max_num_seqs' has the wrong type", id="string-for-int"),
    pytest.param({"cache_size": -1}, "option 'cache_size' must not be negative", id="negative"),
    pytest.param({"plugin_config": "{bad"}, "option 'plugin_config' is not valid JSON", id="plugin_config-not-json"),
    pytest.param({"bogus": 1, "also_bogus": 2}, "option(s): also_bogus, bogus", id="unknown-names"),
])
def test_llm_option_errors_name_the_option(options, fragment):
    with pytest.raises(ConfigError) as info:
        LLMOptions.from_dict(options)
    assert fragment in str(info.value)


def test_optional_options_accept_null():
    assert LLMOptions.from_dict({"max_tokens_limit": None, "chat_template": None}).max_tokens_limit is None


def test_embeddings_pooling_is_case_insensitive_and_normalize_has_the_sentence_transformers_name():
    assert validate_embeddings({"pooling": "mean"}).pooling == "MEAN"
    assert validate_embeddings({"normalize_embeddings": False}).normalize is False
    assert validate_embeddings({"matryoshka_dimensions": [128, 256]}).matryoshka_dimensions == [128, 256]


@pytest.mark.parametrize("options,fragment", [
    pytest.param({"pooling": "max"}, "option 'pooling' must be one of CLS, MEAN, LAST", id="pooling-max"),
    pytest.param({"max_batch_size": 0}, "option 'max_batch_size' must be at least 1", id="batch-zero"),
    pytest.param({"matryoshka_dimensions": [128, 0]}, "matryoshka_dimensions", id="dimension-zero"),
    pytest.param({"matryoshka_dimensions": [True]}, "matryoshka_dimensions", id="dimension-bool"),
])
def test_embeddings_option_errors(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate_embeddings(options)


def test_rerank_refuses_embedding_only_options():
    assert validate_rerank({"max_allowed_chunks": 4}).max_allowed_chunks == 4
    with pytest.raises(ConfigError, match="unknown .*option.*: pooling"):
        validate_rerank({"pooling": "CLS"})


def test_image_sizes_parse_as_width_by_height():
    assert parse_size("64x32") == (64, 32)
    assert parse_size("64") is None and parse_size("64x32x2") is None and parse_size(" 64x32") is None
    options = ImageOptions.from_dict({"resolution": "32x16", "default_resolution": "16x8", "max_resolution": "64x64"})
    assert (options.static_size, options.default_size, options.max_size) == ((32, 16), (16, 8), (64, 64))


def test_image_devices_are_one_or_three():
    assert ImageOptions.from_dict({"device": "CPU CPU GPU"}).devices == ["CPU", "CPU", "GPU"]
    with pytest.raises(ConfigError, match="one device or three"):
        ImageOptions.from_dict({"device": "CPU GPU"})


@pytest.mark.parametrize("options,fragment", [
    pytest.param({"max_resolution": "huge"}, "option 'max_resolution' must be WxH", id="resolution-not-WxH"),
    pytest.param({"default_resolution": "0x64"}, "option 'default_resolution' must be WxH", id="resolution-zero"),
    pytest.param({"max_num_inference_steps": 0}, "option 'max_num_inference_steps' must be at least 1",
                 id="steps-zero"),
    pytest.param({"default_num_inference_steps": 60, "max_num_inference_steps": 50},
                 "'default_num_inference_steps' exceeds 'max_num_inference_steps'", id="default-above-max"),
    pytest.param({"num_images_per_prompt": 2}, "need 'resolution'", id="static-n-without-resolution"),
    pytest.param({"guidance_scale": 1.0}, "need 'resolution'", id="static-guidance-without-resolution"),
    pytest.param({"steps": 4}, "option(s): steps", id="unknown-name"),
])
def test_image_option_errors(options, fragment):
    with pytest.raises(ConfigError) as info:
        ImageOptions.from_dict(options)
    assert fragment in str(info.value)


def test_static_image_options_take_an_integer_guidance_scale():
    options = ImageOptions.from_dict({"resolution": "32x16", "num_images_per_prompt": 2, "guidance_scale": 7})
    assert options.num_images_per_prompt == 2 and options.guidance_scale == 7
