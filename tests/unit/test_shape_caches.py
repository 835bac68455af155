"""`--cpu_shape_caches` (servables/shape_caches.py, README "Memory over time")."""
from __future__ import annotations

import os

import pytest

from gateway import cli
from servables import shape_caches
from servables.llm_options import LLMOptions
from servables.shape_caches import PRIMITIVE_CACHE_ENV, RUNTIME_CACHE


@pytest.fixture
def caches_off(monkeypatch):
    monkeypatch.setattr(shape_caches, "_caches_on", False)


def test_by_default_the_llm_keeps_the_plugins_runtime_cache():
    assert RUNTIME_CACHE not in LLMOptions.from_dict({}).pipeline_properties()


def test_with_the_caches_off_a_cpu_llm_gets_no_runtime_cache(caches_off):
    assert LLMOptions.from_dict({}).pipeline_properties()[RUNTIME_CACHE] == 0


def test_plugin_config_chooses_its_own_runtime_cache_and_is_not_modified(caches_off):
    options = LLMOptions.from_dict({"plugin_config": {RUNTIME_CACHE: 5000}})
    assert options.pipeline_properties()[RUNTIME_CACHE] == 5000
    assert options.plugin_config == {RUNTIME_CACHE: 5000}  # the precision hint goes to a copy


@pytest.mark.parametrize("device", ["GPU", "NPU", "AUTO:GPU,CPU"])
def test_other_devices_do_not_get_the_cpu_property(caches_off, device):
    assert RUNTIME_CACHE not in LLMOptions.from_dict({"device": device}).pipeline_properties()


def _serve_env(monkeypatch, argv):
    """What `serve` would see: the process setting and oneDNN's variable when it starts loading models."""
    monkeypatch.setattr(shape_caches, "_caches_on", True)
    monkeypatch.setattr(cli, "serve", lambda args: (shape_caches._caches_on, os.environ.get(PRIMITIVE_CACHE_ENV)))
    return cli.main(argv)


def test_serve_leaves_onednn_alone_by_default(monkeypatch):
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV, raising=False)
    assert _serve_env(monkeypatch, ["serve"]) == (True, None)


def test_serve_with_the_caches_off_sets_onednn_before_loading(monkeypatch):
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV, raising=False)
    assert _serve_env(monkeypatch, ["serve", "--cpu_shape_caches", "off"]) == (False, "0")


def test_an_environment_value_is_kept(monkeypatch):
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "64")
    assert _serve_env(monkeypatch, ["serve", "--cpu_shape_caches", "off"]) == (False, "64")
