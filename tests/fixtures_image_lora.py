"""A LoRA adapter (kohya `lora_unet_*` layout) for the tiny Stable Diffusion of tests/fixtures_image.py.

Random low-rank updates of every attention projection of the UNet, large enough to change the image.
Built once (torch + diffusers, the conversion extra) and cached (tests/model_cache.py).
"""
from __future__ import annotations

from pathlib import Path

from tests.fixtures_image import PARAMS
from tests.model_cache import cached

LORA = {"rank": 4, "std": 0.5, "alpha": 4.0, "seed": 0, "targets": ["to_q", "to_k", "to_v", "to_out.0"]}
FILE = "sd_lora.safetensors"


def _build(out: Path) -> None:
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    un = PARAMS["unet"]
    unet = UNet2DConditionModel(  # the fixture's UNet shape: only the module names and widths are used
        block_out_channels=tuple(un["block_out_channels"]), layers_per_block=un["layers_per_block"],
        sample_size=un["sample_size"], in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=un["cross_attention_dim"], attention_head_dim=un["attention_head_dim"], norm_num_groups=32)
    torch.manual_seed(LORA["seed"])
    tensors = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in LORA["targets"]):
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = torch.randn(LORA["rank"], module.in_features) * LORA["std"]
            tensors[f"{key}.lora_up.weight"] = torch.randn(module.out_features, LORA["rank"]) * LORA["std"]
            tensors[f"{key}.alpha"] = torch.tensor(LORA["alpha"])
    save_file(tensors, out / FILE)


def tiny_sd_lora() -> Path:
    """The adapter's .safetensors file."""
    return cached("tiny-sd-lora", {**PARAMS, **LORA}, _build) / FILE
