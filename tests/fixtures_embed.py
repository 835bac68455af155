"""Fixtures for the embeddings and rerank tests: the models (cached across runs) and one server.

Models: the packaged MiniLM converted to OpenVINO IR by the server's own default-model code, and a
tiny randomly initialised BERT cross-encoder (num_labels=1, MiniLM tokenizer, 64-token context)
exported with optimum-intel. Both are built once into ~/.cache/genai-gateway (temp dir + rename).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import F32, write_config
from tests.model_cache import cached
from tests.server import ServerProcess

MINILM = "minilm"  # f32 MiniLM, dynamic batching with a generous wait (the batching test needs company)
MINILM_TRUNC = "minilm-truncate"  # truncate: true, Matryoshka sizes 128 and 256
MINILM_SERIAL = "minilm-serial"  # no dynamic batching and a short queue: overload is reachable
SERIAL_QUEUE = 8
CROSS_ENCODER = "tiny-cross-encoder"
CE_CONTEXT = 64
CE_MAX_CHUNKS = 8

TINY_CE_PARAMS = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                  "max_position_embeddings": CE_CONTEXT, "num_labels": 1, "initializer_range": 0.5, "seed": 0,
                  "version": 1}


def minilm_source() -> Path:
    from servables.sources import DEFAULT_EMBEDDINGS_PACKAGE, package_dir

    return package_dir(DEFAULT_EMBEDDINGS_PACKAGE) / "model"


def build_tiny_cross_encoder(out: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    params = dict(TINY_CE_PARAMS)
    torch.manual_seed(params.pop("seed"))
    params.pop("version")
    hf = out.parent / "hf"
    config = BertConfig(vocab_size=30522, **params)
    BertForSequenceClassification(config).eval().save_pretrained(hf)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy2(minilm_source() / name, hf / name)
    command = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino", "--model", str(hf),
               "--task", "text-classification", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="session")
def minilm_ir() -> Path:
    from servables.sources import default_embeddings_dir

    return default_embeddings_dir()


@pytest.fixture(scope="session")
def cross_encoder_ir() -> Path:
    return cached("tiny-cross-encoder", TINY_CE_PARAMS, build_tiny_cross_encoder)


@pytest.fixture(scope="session")
def embed_server(minilm_ir, cross_encoder_ir, tmp_path_factory):
    entries = [
        {"name": MINILM, "base_path": str(minilm_ir), "task": "embeddings", "plugin_config": F32,
         "max_wait_ms": 20},
        {"name": MINILM_TRUNC, "base_path": str(minilm_ir), "plugin_config": F32, "truncate": True,
         "matryoshka_dimensions": [128, 256]},
        {"name": MINILM_SERIAL, "base_path": str(minilm_ir), "max_batch_size": 1, "max_wait_ms": 0,
         "max_queue_size": SERIAL_QUEUE},
        {"name": CROSS_ENCODER, "base_path": str(cross_encoder_ir), "task": "rerank", "plugin_config": F32,
         "max_allowed_chunks": CE_MAX_CHUNKS},
    ]
    path = write_config(tmp_path_factory.mktemp("embed") / "config.json", entries)
    server = ServerProcess("--config_path", str(path), "--metrics_enable", log_name="embed").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embed_http(embed_server):
    with httpx.Client(base_url=embed_server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def embed_client(embed_server):
    import openai

    return openai.OpenAI(base_url=f"{embed_server.url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def hf_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_source()))
