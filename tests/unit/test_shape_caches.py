"""The CPU per-shape cache defaults (servables/shape_caches.py, README "Memory over time")."""
from __future__ import annotations

import os

import pytest

from gateway import cli
from servables.llm_options import LLMOptions
from servables.shape_caches import PRIMITIVE_CACHE_ENV, RUNTIME_CACHE


def test_the_llm_runs_without_the_cpu_runtime_cache_by_default():
    assert LLMOptions.from_dict({}).pipeline_properties()[RUNTIME_CACHE] == 0


def test_plugin_config_chooses_its_own_runtime_cache_and_is_not_modified():
    plugin_config = {RUNTIME_CACHE: 5000}
    options = LLMOptions.from_dict({"plugin_config": plugin_config})
    assert options.pipeline_properties()[RUNTIME_CACHE] == 5000
    assert options.plugin_config == {RUNTIME_CACHE: 5000}  # the precision hint goes to a copy


@pytest.mark.parametrize("device", ["GPU", "NPU", "AUTO:GPU,CPU"])
def test_other_devices_do_not_get_the_cpu_property(device):
    assert RUNTIME_CACHE not in LLMOptions.from_dict({"device": device}).pipeline_properties()


def test_serve_sets_the_onednn_primitive_cache_default_before_loading(monkeypatch):
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV, raising=False)
    monkeypatch.setattr(cli, "serve", lambda args: os.environ.get(PRIMITIVE_CACHE_ENV))
    assert cli.main(["serve"]) == "0"


def test_an_environment_value_is_kept(monkeypatch):
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "1024")
    monkeypatch.setattr(cli, "serve", lambda args: os.environ.get(PRIMITIVE_CACHE_ENV))
    assert cli.main(["serve"]) == "1024"
