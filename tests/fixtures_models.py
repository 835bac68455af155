"""Test models built on the fly and cached in ~/.cache/genai-gateway/test-models/<name>-<hash>."""
from __future__ import annotations

from pathlib import Path

from tests.model_cache import cached  # noqa: E402

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Tell me a story about a dragon and a knight.",
    "What is the capital of France? Paris is the capital of France.", "Count to ten: one two three four five.",
    "Hello, how are you today? I am fine, thank you.", "OpenVINO runs models on CPUs, GPUs and NPUs.",
] * 20


TINY_LLAMA = {"vocab_size": 400, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "seed": 0}


def _build_tiny_llama(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=TINY_LLAMA["vocab_size"], special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(TINY_LLAMA["seed"])
    params = {k: v for k, v in TINY_LLAMA.items() if k != "seed"}
    config = LlamaConfig(**{**params, "vocab_size": tok.get_vocab_size()},
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(out)


def tiny_llama_pytorch() -> Path:
    """A randomly initialised LlamaForCausalLM in HF (PyTorch safetensors) format with a BPE tokenizer."""
    return cached("tiny-llama-hf", TINY_LLAMA, _build_tiny_llama)


def smollm2_gguf() -> Path:
    from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf

    return packaged_gguf(DEFAULT_LLM_PACKAGE)
