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

import pytest

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
# Qwen2-VL: 14 px patches merged 2x2, 4..16 image tokens per image
QWEN2_VL = {"builder": 1, "seed": 0, "vocab_size": 1000, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2,
            "min_tokens": 4, "max_tokens": 16, "text": PARAMS["text"]}
QWEN2_VL_SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
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


def tiny_llava(params: dict | None = None, name: str = "tiny-llava") -> Path:
    """The exported model folder (OpenVINO IR + tokenizer IR + preprocessor_config.json), built on first use.
    `params` replaces PARAMS (bench/vlm_throughput.py builds a larger one)."""
    params = params or PARAMS
    return cached(name, params, lambda out: _build_in_subprocess(out, "llava", params))


def tiny_qwen2_vl() -> Path:
    """A tiny random Qwen2-VL, exported the same way: the layout `openvino_genai.EmbeddingPipeline`
    takes for image + text embeddings (its multimodal path needs Qwen2-VL's 3-D rotary positions)."""
    return cached("tiny-qwen2-vl", QWEN2_VL, lambda out: _build_in_subprocess(out, "qwen2_vl", QWEN2_VL))


def _build_in_subprocess(out: Path, arch: str, params: dict) -> None:
    import json

    result = subprocess.run([sys.executable, "-m", "tests.fixtures_vlm", str(out), arch, json.dumps(params)],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0 or not (out / "openvino_language_model.xml").is_file():
        raise RuntimeError(f"building the tiny {arch} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


# --- images and the servers the tests talk to -------------------------------------------------

def image_bytes(seed: int, size: tuple[int, int] = (50, 40), fmt: str = "PNG") -> bytes:
    """A random RGB image (`size` = width, height) encoded as `fmt`; the same seed gives the same pixels."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def blank_png(size: tuple[int, int]) -> bytes:
    """A one-colour PNG: a few hundred bytes that decode to width x height pixels (a decompression bomb in small)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG")
    return buffer.getvalue()


def video_bytes(seed: int, frames: int = 8, fps: int = 4, size: tuple[int, int] = (64, 48)) -> bytes:
    """A random-noise MPEG-4 video in an MP4 container (`size` = width, height), encoded with PyAV."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    rng = np.random.RandomState(seed)
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(frames):
            pixels = rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def short_context_copy(model: Path, folder: Path, context: int) -> Path:
    """`model` with its text context cut to `context` tokens: links to its files, a rewritten config.json."""
    import json

    out = folder / f"{model.name}-ctx{context}"
    out.mkdir()
    for item in model.iterdir():
        if item.name != "config.json":
            (out / item.name).symlink_to(item)
    config = json.loads((model / "config.json").read_text())
    config.setdefault("text_config", {})["max_position_embeddings"] = context
    (out / "config.json").write_text(json.dumps(config))
    return out


def data_url(data: bytes, media_type: str = "image/png") -> str:
    import base64

    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


class MediaHost:
    """A local HTTP server on 127.0.0.1 serving test images, redirects and a slow path."""

    def __init__(self, files: dict[str, bytes], slow_seconds: float = 5.0):
        import http.server
        import threading
        import time

        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = self.path
                if path.startswith("/redirect-other/"):  # same machine, another host name
                    self._redirect(f"http://localhost:{host.port}/{path.split('/', 2)[2]}")
                elif path.startswith("/redirect-same/"):
                    self._redirect(f"/{path.split('/', 2)[2]}")
                elif path == "/slow.png":
                    time.sleep(slow_seconds)
                    self._send(files["a.png"])
                elif path.lstrip("/") in files:
                    self._send(files[path.lstrip("/")])
                else:
                    self.send_error(404)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the gateway hung up (timeout, size cap)
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- building (runs in the subprocess) ---------------------------------------------------------

def _tokenizer(specials: list[str] = SPECIALS, image_tag: str = "<image>"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(PARAMS["seed"])
    corpus = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + rng.choice(".?!")
              for _ in range(3000)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=PARAMS["vocab_size"], special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", additional_special_tokens=specials[4:], padding_side="left")
    tok.chat_template = CHAT_TEMPLATE.replace("'<image>'", repr(image_tag))
    return tok


def build(out: Path, params: dict = PARAMS) -> None:
    import torch
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(params["seed"])
    hf = out.parent / "hf"
    tok = _tokenizer()
    size, patch = params["image_size"], params["patch_size"]
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(image_size=size, patch_size=patch, projection_dim=32, **params["vision"]),
        text_config=LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id, tie_word_embeddings=False, **params["text"]),
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=(size // patch) ** 2,
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


def build_qwen2_vl(out: Path, params: dict = QWEN2_VL) -> None:
    import optimum.exporters.openvino.model_configs as model_configs
    import torch
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(params["seed"])
    hf = out.parent / "hf"
    tok = _tokenizer(SPECIALS[:-1] + QWEN2_VL_SPECIALS, "<|vision_start|><|image_pad|><|vision_end|>")
    ids = {name: tok.convert_tokens_to_ids(name) for name in QWEN2_VL_SPECIALS}
    patch, merge = params["patch_size"], params["merge_size"]
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id, "tie_word_embeddings": False,
                     # multimodal rotary sections: they sum to half the head size (64 / 4 / 2)
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, **params["text"]},
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                       "in_chans": 3, "patch_size": patch, "spatial_merge_size": merge,
                       "temporal_patch_size": params["temporal_patch_size"]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    unit = patch * merge
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=unit * unit * params["min_tokens"], max_pixels=unit * unit * params["max_tokens"],
        patch_size=patch, merge_size=merge, temporal_patch_size=params["temporal_patch_size"])
    model.save_pretrained(hf)
    tok.save_pretrained(hf)
    image_processor.save_pretrained(hf)  # Qwen2VLProcessor itself needs torchvision (its video processor)
    # optimum-intel 2.2 caps the Qwen2-VL export at transformers 5.0 although it works with 5.5 (the
    # exported IR matches transformers token for token in f32); lifted for this test model only
    model_configs.Qwen2VLOpenVINOConfig.MAX_TRANSFORMERS_VERSION = "5.99"
    main_export(model_name_or_path=str(hf), output=str(out), task="image-text-to-text",
                ov_config=OVConfig(dtype="fp32"), convert_tokenizer=True)
    shutil.copy(hf / "preprocessor_config.json", out / "preprocessor_config.json")


if __name__ == "__main__":
    import json

    (build_qwen2_vl if sys.argv[2] == "qwen2_vl" else build)(Path(sys.argv[1]), json.loads(sys.argv[3]))


# --- pytest fixtures (tests/conftest.py lists this module in pytest_plugins) -------------------

VLM = "tiny-llava"
QWEN2_VL_CHAT = "tiny-qwen2-vl"
QWEN2_VL_SHORT = "tiny-qwen2-vl-short"  # the same model with a 64-token context (the context-length check)
SHORT_CONTEXT = 64
TEXT_LLM = "smol-text"
LIMITS = {"max_images_per_request": 3, "max_image_bytes": 60_000, "max_image_pixels": 1_000_000,
          "media_fetch_timeout_seconds": 2, "max_videos_per_request": 2, "max_video_bytes": 200_000,
          "video_fps": 4, "max_video_frames": 6}


@pytest.fixture(scope="session")
def media_host():
    files = {"a.png": image_bytes(0), "b.png": image_bytes(1), "big.png": image_bytes(2, (300, 300)),
             "bomb.png": blank_png((1500, 1000)), "a.mp4": video_bytes(0)}
    host = MediaHost(files)
    yield host
    host.close()


@pytest.fixture(scope="session")
def vlm_server(tmp_path_factory, media_host):
    """The tiny LLaVA (f32, so greedy tokens are exact) beside a text-only LLM, on one server with
    127.0.0.1 as the only allowed media host and a local media folder."""
    import json

    from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf
    from tests.server import ServerProcess

    folder = tmp_path_factory.mktemp("vlm")
    media = folder / "media"
    media.mkdir()
    (media / "a.png").write_bytes(image_bytes(0))
    (media / "a.mp4").write_bytes(video_bytes(0))
    (folder / "outside.png").write_bytes(image_bytes(0))
    (media / "escape.png").symlink_to(folder / "outside.png")
    config = {"model_config_list": [
        {"config": {"name": VLM, "base_path": str(tiny_llava()),
                    "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        {"config": {"name": QWEN2_VL_CHAT, "base_path": str(tiny_qwen2_vl()),
                    "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        {"config": {"name": QWEN2_VL_SHORT,
                    "base_path": str(short_context_copy(tiny_qwen2_vl(), folder, SHORT_CONTEXT)),
                    "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        {"config": {"name": TEXT_LLM, "base_path": str(packaged_gguf(DEFAULT_LLM_PACKAGE)),
                    "task": "text_generation"}},
    ]}
    (folder / "config.json").write_text(json.dumps(config))
    limits = [arg for key, value in LIMITS.items() for arg in (f"--{key}", str(value))]
    server = ServerProcess("--config_path", str(folder / "config.json"), "--metrics_enable",
                           "--allowed_media_domains", "127.0.0.1", "--allowed_local_media_path", str(media),
                           *limits, log_name="vlm").start()
    server.media = media
    server.folder = folder
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vlm_client(vlm_server):
    import openai

    return openai.OpenAI(base_url=f"{vlm_server.url}/v3", api_key="unused", max_retries=0)


VLM_EMBED = "tiny-qwen2-vl-embed"


@pytest.fixture(scope="session")
def vlm_embed_server(tmp_path_factory, minilm_ir):
    """The tiny Qwen2-VL served as a multimodal embedding model (f32), beside the text-only MiniLM."""
    import json

    from tests.server import ServerProcess

    folder = tmp_path_factory.mktemp("vlm-embed")
    config = {"model_config_list": [
        {"config": {"name": VLM_EMBED, "base_path": str(tiny_qwen2_vl()), "task": "embeddings",
                    "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}},
        {"config": {"name": "minilm", "base_path": str(minilm_ir), "task": "embeddings"}},
    ]}
    (folder / "config.json").write_text(json.dumps(config))
    server = ServerProcess("--config_path", str(folder / "config.json"), "--max_images_per_request", "4",
                           log_name="vlm-embed").start()
    yield server
    server.stop()
