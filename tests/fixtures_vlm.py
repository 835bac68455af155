"""A tiny randomly initialised LLaVA (CLIP vision tower + Llama text model), exported to OpenVINO IR and cached.

No vision-language weights exist offline, so the tests build one: a byte-level BPE tokenizer
trained here on a synthetic corpus (with `<image>` and role markers as special tokens), a 2-layer
CLIP vision tower on 32x32 images with 8x8 patches (16 image tokens per image), a 2-layer Llama
and a projector, all random but seeded. LLaVA is the architecture that optimum-intel exports under
transformers 5 and that openvino_genai's VLMPipeline and ContinuousBatchingPipeline both load.
Outputs are meaningless; the mechanics (image preprocessing, embedding, batching) are real.

Two details matter for openvino_genai:
- transformers 5 writes the image processor only inside `processor_config.json`; GenAI reads
  `preprocessor_config.json`, so it is written explicitly and copied beside the IR (without it,
  GenAI falls back to a 336 px crop and fails on the first image).
- transformers 5 without torchvision needs the Pillow image processor class (`CLIPImageProcessorPil`).

Building needs the conversion extra (torch, transformers, optimum-intel) and runs in a subprocess
(`python -m tests.fixtures_vlm OUT_DIR`) so the test process never imports torch.
"""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

from tests.model_cache import cached

ROOT = Path(__file__).resolve().parent.parent

PARAMS = {
    "builder": 1,
    "seed": 0,
    "vocab_size": 1000,
    "image_size": 32,
    "patch_size": 8,
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 2048},
}
IMAGE_TOKENS = (PARAMS["image_size"] // PARAMS["patch_size"]) ** 2  # per image, in the prompt
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<image>"]
# content is a string or a list of parts; an {"type": "image"} part renders the model's image tag
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
WORDS = ("the a of is what which image picture shows cat dog car tree sky sea red green blue black white "
         "left right top one two three describe color shape square circle hello yes no answer").split()


def tiny_llava() -> Path:
    """The exported model folder (OpenVINO IR + tokenizer IR + preprocessor_config.json), built on first use."""
    return cached("tiny-llava", PARAMS, _build_in_subprocess)


def _build_in_subprocess(out: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.fixtures_vlm", str(out)], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0 or not (out / "openvino_language_model.xml").is_file():
        raise RuntimeError(f"building the tiny LLaVA failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


# --- building (runs in the subprocess) ---------------------------------------------------------

def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(PARAMS["seed"])
    corpus = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + rng.choice(".?!")
              for _ in range(3000)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=PARAMS["vocab_size"], special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", additional_special_tokens=SPECIALS[4:], padding_side="left")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build(out: Path) -> None:
    import torch
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(PARAMS["seed"])
    hf = out.parent / "hf"
    tok = _tokenizer()
    size, patch = PARAMS["image_size"], PARAMS["patch_size"]
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=size, patch_size=patch, projection_dim=32, **PARAMS["vision"]),
        text_config=LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id, tie_word_embeddings=False, **PARAMS["text"]),
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=IMAGE_TOKENS,
        vision_feature_layer=-1, vision_feature_select_strategy="default")
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               image_token="<image>", chat_template=CHAT_TEMPLATE)
    model.save_pretrained(hf)
    tok.save_pretrained(hf)
    processor.save_pretrained(hf)
    image_processor.save_pretrained(hf)  # preprocessor_config.json, which GenAI reads
    main_export(model_name_or_path=str(hf), output=str(out), task="image-text-to-text",
                ov_config=OVConfig(dtype="fp32"), convert_tokenizer=True)
    shutil.copy(hf / "preprocessor_config.json", out / "preprocessor_config.json")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
