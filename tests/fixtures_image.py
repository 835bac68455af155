"""A tiny randomly initialised Stable Diffusion 1.x pipeline, exported to OpenVINO IR and cached.

No diffusion weights exist offline, so the tests build one: a CLIP
tokenizer over a small byte-level vocabulary, a 2-layer CLIP text encoder, a tiny UNet and VAE
(VAE scale factor 2) and a DDIM scheduler, saved with diffusers and exported with
`optimum-cli export openvino --task text-to-image`. The result is cached in
~/.cache/genai-gateway/test-models/tiny-sd-<hash of the builder parameters>; it is built in a
temporary folder beside it and renamed into place, so an interrupted build leaves nothing behind.

Building needs the conversion extra (torch, diffusers, optimum-intel); it runs in a subprocess
(`python -m tests.fixtures_image OUT_DIR`) so the test process never imports torch.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.model_cache import cached

ROOT = Path(__file__).resolve().parent.parent

PARAMS = {
    "builder": 1,
    "seed": 0,
    "text_encoder": {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "max_position_embeddings": 77},
    "unet": {"block_out_channels": [32, 64], "layers_per_block": 1, "cross_attention_dim": 32,
             "sample_size": 32, "attention_head_dim": 8},
    "vae": {"block_out_channels": [32, 64], "latent_channels": 4},
    "merges": ["t h", "th e</w>", "c a", "ca t</w>", "d o", "do g</w>", "a n"],
}


def _build_in_subprocess(out: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.fixtures_image", str(out)], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the tiny SD model failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def ensure_tiny_sd() -> Path:
    """The exported model folder, built on first use."""
    return cached("tiny-sd", PARAMS, _build_in_subprocess)


# --- building (runs in the subprocess) ---------------------------------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (transformers 5 no longer exports it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=False))


def _write_tokenizer_files(folder: Path) -> None:
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    for merge in PARAMS["merges"]:
        vocab_list.append(merge.replace(" ", ""))
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(PARAMS["merges"]) + "\n")


def build(out_dir: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(PARAMS["seed"])
    hf_dir = out_dir.parent / "hf"
    tok_src = out_dir.parent / "tok-src"
    _write_tokenizer_files(tok_src)
    tokenizer = CLIPTokenizer(str(tok_src / "vocab.json"), str(tok_src / "merges.txt"),
                              model_max_length=PARAMS["text_encoder"]["max_position_embeddings"])
    te = PARAMS["text_encoder"]
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=te["hidden_size"], **te))
    un = PARAMS["unet"]
    unet = UNet2DConditionModel(
        block_out_channels=tuple(un["block_out_channels"]), layers_per_block=un["layers_per_block"],
        sample_size=un["sample_size"], in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=un["cross_attention_dim"], attention_head_dim=un["attention_head_dim"],
        norm_num_groups=32)
    va = PARAMS["vae"]
    vae = AutoencoderKL(
        block_out_channels=va["block_out_channels"], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=va["latent_channels"],
        norm_num_groups=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(hf_dir))
    subprocess.run(["optimum-cli", "export", "openvino", "--model", str(hf_dir), "--task", "text-to-image",
                    str(out_dir)], check=True, env={**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                                                     f"{os.environ.get('PATH', '')}"})
    if not (out_dir / "model_index.json").is_file():
        raise RuntimeError(f"export wrote no model_index.json into {out_dir}")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
