"""Dockerfile and Kubernetes manifests: schema-valid, and their server arguments parse with our CLI."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from gateway.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def container_args(doc: dict) -> list[list[str]]:
    spec = doc["spec"]
    containers = spec.get("containers") or spec["template"]["spec"]["containers"]
    return [c["args"] for c in containers]


@pytest.mark.parametrize("name", ["deployment.yaml", "hpa.yaml"])
def test_core_manifests_validate_against_kubernetes_schemas(name):
    for doc in documents(name):
        kv.validate(doc, K8S_VERSION, strict=True)


def test_deployment_probes_use_health_endpoints_and_prometheus_scrapes():
    deployment, service = documents("deployment.yaml")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_hpa_scales_on_a_metric_the_server_exports(llm_server):
    (hpa,) = documents("hpa.yaml")
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    import httpx

    assert f"# TYPE {metric} gauge" in httpx.get(f"{llm_server.url}/metrics").text


def _kserve_validator(kind: str) -> jsonschema.Validator:
    schemas = json.loads((ROOT / "tests" / "schemas" / "kserve.json").read_text())
    definitions = kv.schema_contents(f"kubernetes-json-schema/v{K8S_VERSION}.0-local/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(definitions) @ Registry()  # registered under its $id
    return jsonschema.Draft202012Validator(schemas[kind], registry=registry)


def test_kserve_manifests_validate_and_reference_each_other():
    runtime, service = documents("kserve.yaml")
    _kserve_validator("ServingRuntime").validate(runtime)
    _kserve_validator("InferenceService").validate(service)
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}


@pytest.mark.parametrize("name", ["deployment.yaml", "kserve.yaml"])
def test_manifest_server_arguments_parse(name):
    for doc in documents(name):
        if doc["kind"] in ("Deployment", "ServingRuntime"):
            for args in container_args(doc):
                parsed = build_parser().parse_args(args)
                assert parsed.command == "serve" and parsed.rest_bind_address == "0.0.0.0"


def test_dockerfile_is_slim_non_root_and_healthchecked():
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    stages = [i for i in parser.structure if i["instruction"] == "FROM"]
    assert len(stages) == 2  # build stage + slim runtime stage
    final = [i for i in parser.structure if i["startline"] > stages[-1]["startline"]]
    instructions = {i["instruction"] for i in final}
    assert "HEALTHCHECK" in instructions and "USER" in instructions
    user = next(i["value"] for i in final if i["instruction"] == "USER")
    assert not user.startswith("0") and user != "root"
    runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert "gcc" not in runs and "build-essential" not in runs and "torch" not in runs
    cmd = json.loads(next(i["value"] for i in final if i["instruction"] == "CMD"))
    assert build_parser().parse_args(cmd).rest_bind_address == "0.0.0.0"


def test_example_config_file_follows_the_config_schema():
    from servables.config_file import ENTRY_SCHEMA, FILE_SCHEMA

    document = json.loads((ROOT / "configs" / "example.json").read_text())
    jsonschema.validate(document, FILE_SCHEMA)
    for entry in document["model_config_list"]:
        jsonschema.validate(entry, ENTRY_SCHEMA)


def _inference_extension_validator(kind: str) -> jsonschema.Validator:
    """Our transcription of the published CRD schemas (tests/schemas/inference_extension.json says which)."""
    schemas = json.loads((ROOT / "tests" / "schemas" / "inference_extension.json").read_text())
    return jsonschema.Draft202012Validator(schemas[kind])


def test_inference_pool_selects_the_llm_d_labelled_pods_that_serve_its_model():
    deployment, pool, model = documents("inference-extension.yaml")
    kv.validate(deployment, K8S_VERSION, strict=True)
    _inference_extension_validator("InferencePool").validate(pool)
    _inference_extension_validator("InferenceModel").validate(model)
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert labels["llm-d.ai/inferenceServing"] == "true"
    assert pool["spec"]["selector"].items() <= labels.items()
    assert pool["spec"]["selector"]["llm-d.ai/model"] == labels["llm-d.ai/model"]
    assert model["spec"]["poolRef"]["name"] == pool["metadata"]["name"]
    (container,) = pod["spec"]["containers"]
    assert pool["spec"]["targetPortNumber"] in {p["containerPort"] for p in container["ports"]}
    args = build_parser().parse_args(container["args"])
    assert args.rest_port == pool["spec"]["targetPortNumber"] and args.rest_bind_address == "0.0.0.0"
    assert args.metrics_enable and args.vllm_metrics  # the endpoint picker reads the vllm:* gauges
    assert model["spec"]["modelName"] == args.model_name
    # ready = this pod's model is loaded
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{args.model_name}/ready"


@pytest.mark.parametrize("name", ["deployment.yaml", "inference-extension.yaml"])
def test_model_volumes_are_writable_because_genai_opens_gguf_read_write(name):
    """A GGUF model on a readOnly mount fails to load (OpenVINO GenAI opens .gguf files read-write)."""
    mounts = [m for doc in documents(name) if doc.get("kind") == "Deployment"
              for c in doc["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])
              if m["mountPath"] == "/models"]
    assert mounts and not any(m.get("readOnly") for m in mounts)
