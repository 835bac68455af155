"""Server readiness with a model that failed to load: `--strict_readiness` (README "Health and readiness")."""
from __future__ import annotations

from pathlib import Path

from scheduler.model_manager import ModelManager
from servables.base import ModelSpec


def _manager_with_a_failed_model(tmp_path: Path) -> ModelManager:
    manager = ModelManager()
    result = manager.load([ModelSpec("broken", tmp_path / "no-model-here", "embeddings")], strict=False)
    assert result.errors and result.errors[0].startswith("broken: ")
    return manager


def test_strict_readiness_is_not_ready_while_a_configured_model_failed(tmp_path):
    manager = _manager_with_a_failed_model(tmp_path)
    assert manager.ready and manager.failed() == ["broken"]
    assert not manager.is_ready()


def test_without_strict_readiness_the_finished_initial_load_is_ready_as_ovms(tmp_path):
    manager = _manager_with_a_failed_model(tmp_path)
    manager.strict_readiness = False
    assert manager.is_ready()


def test_a_removed_failed_model_no_longer_holds_readiness_back(tmp_path):
    manager = _manager_with_a_failed_model(tmp_path)
    manager.apply([])
    assert manager.failed() == [] and manager.is_ready()
