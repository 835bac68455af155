"""What the fuzz test (tests/test_fuzz.py) and the long fuzz run (bench/fuzz.py) share.

One server: the default LLM with a small `max_tokens_limit`, the default embeddings model and the
`dense` tensor model (tests/fixtures_tensor.py). The fuzzer reads the server's own /openapi.json;
`aim_at_models` points generated cases at the served models (an unknown model is only a 404).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LLM_NAME = "smollm2"
EMBED_NAME = "minilm"
TENSOR_NAME = "dense"
MAX_TOKENS_LIMIT = 8

# the operations of each API once: /v1 and /v3/v1 serve the same functions as /v3
OPERATIONS = (r"^/(v3/(chat/completions|completions|responses|embeddings|rerank|tokenize|images/generations|"
              r"images/edits|models|models/\{model_id\}|messages|messages/count_tokens|"
              r"audio/(transcriptions|translations|speech))|v2/rerank|v2/models/\{name\}(/infer|/ready)?|"
              r"v2/models/\{name\}/versions/\{version\}/infer|v1/models/\{path\}|v1/config|v2/health/(live|ready)|"
              r"v2|metrics)$")

_MODEL_OF_PATH = {"/v3/embeddings": EMBED_NAME, "/v3/rerank": EMBED_NAME, "/v2/rerank": EMBED_NAME}


def write_config(directory: Path) -> Path:
    from servables.sources import DEFAULT_LLM_PACKAGE, default_embeddings_dir, packaged_gguf
    from tests.fixtures_tensor import dense_repository

    entries = [
        {"name": LLM_NAME, "base_path": str(packaged_gguf(DEFAULT_LLM_PACKAGE)), "max_tokens_limit": MAX_TOKENS_LIMIT},
        {"name": EMBED_NAME, "base_path": str(default_embeddings_dir()), "task": "embeddings"},
        {"name": TENSOR_NAME, "base_path": str(dense_repository())},
    ]
    path = directory / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    return path


def aim_at_models(case: Any) -> None:
    """Replace generated model names (strings only: other types stay, as invalid input) by served ones."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        body["model"] = _MODEL_OF_PATH.get(case.operation.path, LLM_NAME)
    params = case.path_parameters or {}
    if isinstance(params.get("name"), str):
        params["name"] = TENSOR_NAME
    if isinstance(params.get("path"), str) and case.operation.path == "/v1/models/{path}":
        params["path"] = f"{TENSOR_NAME}:predict" if case.method.upper() == "POST" else TENSOR_NAME


@dataclass
class FuzzReport:
    operations: list[str] = field(default_factory=list)
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (f"{len(self.operations)} operations, {self.examples} requests ({statuses}), "
                f"{len(self.failures)} failures")


def fuzz(base_url: str, operations: str, max_examples: int, seed: int = 0,
         per_operation: dict[str, Counter[int]] | None = None) -> FuzzReport:
    """Run every operation matching `operations` with `max_examples` per generation mode (seed 0:
    derandomized); `per_operation` collects statuses by operation."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.failures import FailureGroup  # a BaseExceptionGroup

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(path_regex=operations)
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        report.operations.append(label)
        counts = Counter[int]() if per_operation is None else per_operation.setdefault(label, Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _runner(base_url, operation, mode, max_examples, seed, report, counts)()
            except Unsatisfiable:  # nothing invalid to send (no body, string path parameters only)
                continue
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - one failing operation must not hide others
                report.failures.append(f"{label} ({mode.value}): {str(exc)[:2000]}")
    return report


def _runner(base_url: str, operation: Any, mode: Any, max_examples: int, seed: int, report: FuzzReport,
            counts: Counter[int]) -> Any:
    """A Hypothesis test that sends `operation`'s generated cases and checks each answer."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=max_examples, derandomize=seed == 0, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    def run(case: Any) -> None:
        aim_at_models(case)
        report.examples += 1
        response = case.call(base_url=base_url, timeout=60)
        report.statuses[response.status_code] += 1
        counts[response.status_code] += 1
        case.validate_response(response, checks=checks)

    return hypothesis_seed(seed)(run) if seed else run
