"""Parked models (configured, not loaded) in the model manager, the config entry's `load`, the idle flag."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import build_parser, idle_unload_seconds
from scheduler.model_manager import ModelManager
from servables.base import ModelSpec
from servables.config_file import read_config
from servables.errors import ModelNotFound, ModelNotLoaded

LAZY = ModelSpec("lazy", Path("/models/lazy"), "text_generation", load="on_demand")


def version(manager: ModelManager, name: str) -> dict:
    (status,) = manager.status()[name]["model_version_status"]
    return status


def test_an_on_demand_entry_is_parked_and_needs_an_explicit_load_without_autoload():
    manager = ModelManager()
    manager.load([LAZY])
    with pytest.raises(ModelNotLoaded) as raised:
        manager.get("lazy")
    assert not raised.value.loadable and "POST /v3/models/lazy/load" in raised.value.message
    assert version(manager, "lazy")["state"] == "END" and version(manager, "lazy")["loaded"] is False
    assert [spec.name for spec, _ in manager.parked()] == ["lazy"]
    with pytest.raises(ModelNotFound):
        manager.get("other")


def test_with_autoload_a_parked_model_is_available_and_a_request_may_load_it():
    manager = ModelManager()
    manager.autoload = True
    manager.load([LAZY])
    with pytest.raises(ModelNotLoaded) as raised:
        manager.get("lazy")
    assert raised.value.loadable
    assert version(manager, "lazy")["state"] == "AVAILABLE"


def test_a_reload_keeps_a_parked_model_parked_and_a_removal_ends_it():
    manager = ModelManager()
    manager.load([LAZY])
    changed = ModelSpec("lazy", Path("/models/lazy-v2"), "text_generation", load="on_demand")
    assert manager.apply([changed]).changed
    assert manager.parked()[0][0] == changed  # not loaded by the reload: its new spec waits
    assert not manager.apply([changed]).changed
    manager.apply([])
    assert manager.parked() == [] and version(manager, "lazy")["state"] == "END"
    with pytest.raises(ModelNotFound):
        manager.get("lazy")


def test_config_entry_load_is_startup_or_on_demand(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "a", "base_path": "m.gguf", "task": "text_generation", "load": "on_demand"}},
        {"config": {"name": "b", "base_path": "m.gguf", "task": "text_generation", "load": "later"}},
    ]}))
    contents = read_config(config)
    assert [(s.name, s.load) for s in contents.specs] == [("a", "on_demand")]
    assert "load" in contents.invalid["b"]


def test_idle_unload_timeout_comes_from_the_flag_else_the_config_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_config_list": [], "idle_unload_timeout_seconds": 300}))
    parse = build_parser().parse_args
    assert idle_unload_seconds(parse(["serve", "--config_path", str(config)])) == 300
    assert idle_unload_seconds(parse(["serve", "--config_path", str(config), "--idle_unload_seconds", "5"])) == 5
    assert idle_unload_seconds(parse(["serve"])) == 0
