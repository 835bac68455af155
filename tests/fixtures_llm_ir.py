"""Tiny Llama models in OpenVINO IR (fp32) for speculative decoding and LoRA tests.

The weights of `tests/fixtures_models.py`'s tiny Llama are re-drawn from N(0, 0.2) so that greedy
output is not one repeated token; each seed is another model with the same tokenizer (a draft).
The LoRA adapter is written in PEFT's safetensors layout (`adapter_model.safetensors`) with
non-zero `lora_B`, so it changes the output. Built once and cached (tests/model_cache.py).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fixtures_models import TINY_LLAMA, tiny_llama_pytorch
from tests.model_cache import cached

LORA = {"rank": 8, "alpha": 16, "targets": ["q_proj", "v_proj"], "std": 0.5, "seed": 7}


def _redrawn(out: Path, seed: int) -> None:
    import torch
    from transformers import LlamaForCausalLM

    source = tiny_llama_pytorch()
    model = LlamaForCausalLM.from_pretrained(source)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(out)
    for item in source.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy2(item, out / item.name)


def _build_ir(seed: int):
    def build(out: Path) -> None:
        hf = out.parent / "hf"
        hf.mkdir()
        _redrawn(hf, seed)
        command = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino", "--model", str(hf),
                   "--task", "text-generation-with-past", "--weight-format", "fp32", str(out)]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    return build


def tiny_llama_ir(seed: int = 1) -> Path:
    """The tiny Llama with weights drawn by `seed`, exported to OpenVINO IR in fp32."""
    return cached("tiny-llama-ir", {**TINY_LLAMA, "redraw_seed": seed, "std": 0.2}, _build_ir(seed))


def _build_lora(out: Path) -> None:
    import torch
    from safetensors.torch import save_file

    config = json.loads((tiny_llama_pytorch() / "config.json").read_text())
    hidden, heads, kv_heads = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    widths = {"q_proj": hidden, "k_proj": hidden // heads * kv_heads, "v_proj": hidden // heads * kv_heads}
    torch.manual_seed(LORA["seed"])
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for target in LORA["targets"]:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(LORA["rank"], hidden) * 0.1
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(widths[target], LORA["rank"]) * LORA["std"]
    save_file(tensors, out / "adapter_model.safetensors")
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": LORA["rank"], "lora_alpha": LORA["alpha"], "target_modules": LORA["targets"],
        "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM"}))


def tiny_lora() -> Path:
    """A LoRA adapter for the tiny Llama (PEFT layout); `adapter_model.safetensors` inside."""
    return cached("tiny-llama-lora", {**TINY_LLAMA, **LORA}, _build_lora)
