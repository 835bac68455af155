"""Image generation servable: openvino_genai Text2Image, Image2Image and Inpainting pipelines on one model.

The three pipelines share one set of compiled models: the InpaintingPipeline is built first and
the other two are derived from it (`Image2ImagePipeline(text2image)` does not exist in GenAI).
`prepare_generation` / `prepare_edit` validate a request against the server limits and return an
`ImageJob`; `generate` runs one job step by step (the scheduler's image engine calls it from its
worker thread, one job at a time, because the pipelines share their infer requests).
"""
from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import openvino as ov
import openvino_genai as ov_genai

from .base import ModelSpec
from .config_file import ConfigError
from .errors import InferenceError, InvalidRequest, ModelLoadError
from .image_io import decode_image, decode_mask, encode_png
from .image_options import ImageOptions, parse_size
from .lora import AdapterView, LoRASet, parse_source_loras

log = logging.getLogger(__name__)

TEXT2IMAGE = "text2image"
IMAGE2IMAGE = "image2image"
INPAINTING = "inpainting"

MAX_SEED = 2**63 - 1  # the bindings take a signed 64-bit integer
_GENAI_CHECK = re.compile(r"Check '.*?' failed at \S+?:\d+:\s*(.+)", re.DOTALL)

# step, num_steps -> True to cancel the generation
StepCallback = Callable[[int, int], bool]


@dataclass
class ImageParams:
    """What one request asks for, independent of how it arrived (JSON or multipart)."""

    prompt: str | None
    n: int | None = None
    size: str | None = None
    width: int | None = None
    height: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    strength: float | None = None
    rng_seed: int | None = None
    negative_prompt: str | None = None
    negative_prompt_2: str | None = None
    negative_prompt_3: str | None = None
    prompt_2: str | None = None
    prompt_3: str | None = None
    max_sequence_length: int | None = None
    response_format: str | None = None
    lora_alphas: dict[str, float] | None = None  # LoRA alias -> alpha, over the requested adapter's own


@dataclass
class ImageJob:
    """One validated request, ready for `ImageServable.generate`."""

    mode: str
    prompt: str
    width: int
    height: int
    num_images: int
    num_inference_steps: int
    rng_seed: int
    config: dict[str, Any] = field(default_factory=dict)  # further ImageGenerationConfig fields
    image: np.ndarray | None = None  # [H, W, 3] uint8
    mask: np.ndarray | None = None  # [H, W, 3] uint8, white = repaint
    adapter: str | None = None  # the LoRA alias named as the request's model (set by its AdapterView)
    lora_alphas: dict[str, float] = field(default_factory=dict)  # per-request alphas (`lora_alphas`)


class ImageServable:
    task: ClassVar[str] = "image_generation"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        try:
            self.options = ImageOptions.from_dict(spec.options)
        except ConfigError as exc:
            raise ConfigError(f"{spec.name}: {exc}") from None
        self.text2image: ov_genai.Text2ImagePipeline | None = None
        self.image2image: ov_genai.Image2ImagePipeline | None = None
        self.inpainting: ov_genai.InpaintingPipeline | None = None
        self.vae_scale_factor = 8
        self.model_default_size: tuple[int, int] = (512, 512)
        self.static_guidance_scale: float | None = None  # set when the models are reshaped to static shapes
        self.loras: LoRASet | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # --- loading --------------------------------------------------------------------------

    def _make(self, cls: type) -> Any:
        opts = self.options
        path, devices, props = str(self.spec.base_path), opts.devices, opts.plugin_config
        if self.loras is not None:  # every adapter registered at load; each call picks its own (generate)
            props = {**props, "adapters": self.loras.pipeline_property()}
        if len(devices) == 1 and opts.static_size is None:
            return cls(path, devices[0], **props)
        pipe = cls(path)
        if opts.static_size is not None:
            width, height = opts.static_size
            guidance = opts.guidance_scale
            if guidance is None:
                guidance = pipe.get_generation_config().guidance_scale
            pipe.reshape(opts.num_images_per_prompt or 1, height, width, guidance)
            self.static_guidance_scale = float(guidance)
        pipe.compile(*devices, **props)
        return pipe

    def load(self) -> None:
        path = self.spec.base_path
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(f"{self.name}: {path} is not a diffusers-layout model (no model_index.json)")
        if self.options.source_loras:
            self.loras = LoRASet(parse_source_loras(self.options.source_loras), path, self.name)
        # The richest pipeline the model supports is the root; the simpler ones share its models.
        family = (ov_genai.InpaintingPipeline, ov_genai.Image2ImagePipeline, ov_genai.Text2ImagePipeline)
        errors: list[str] = []
        for index, cls in enumerate(family):
            try:
                root = self._make(cls)
            except Exception as exc:  # noqa: BLE001 - GenAI raises RuntimeError, bad properties TypeError
                errors.append(f"{cls.__name__}: {ov_message(exc)}")
                continue
            pipes = [None] * index + [root] + [derived(root) for derived in family[index + 1:]]
            self.inpainting, self.image2image, self.text2image = pipes
            break
        else:
            raise ModelLoadError(f"{self.name}: cannot load {path}: {errors[-1]}")
        if errors:
            log.warning("%s: serving without %s: %s", self.name, "inpainting" if self.image2image else "image edits",
                        "; ".join(errors))
        self.vae_scale_factor = _vae_scale_factor(path)
        cfg = self.text2image.get_generation_config()
        if cfg.width > 0 and cfg.height > 0:
            self.model_default_size = (cfg.width, cfg.height)
        log.info("loaded %s from %s (modes %s)", self.name, path, ", ".join(self.modes))

    def close(self) -> None:
        self.text2image = self.image2image = self.inpainting = None

    @property
    def modes(self) -> list[str]:
        pipes = ((TEXT2IMAGE, self.text2image), (IMAGE2IMAGE, self.image2image), (INPAINTING, self.inpainting))
        if self.options.static_size and (self.options.num_images_per_prompt or 1) > 1:
            pipes = pipes[:1]  # GenAI's VAE encoder takes a batch of 1 only: no edits on static batches
        return [mode for mode, pipe in pipes if pipe is not None]

    @property
    def default_size(self) -> tuple[int, int]:
        return self.options.static_size or self.options.default_size or self.model_default_size

    def describe(self) -> dict[str, Any]:
        width, height = self.default_size
        return {"task": self.task, "modes": self.modes,
                "default_resolution": f"{width}x{height}", "max_resolution": self.options.max_resolution,
                "lora_adapters": sorted(self.loras.specs) if self.loras else []}

    def aliases(self) -> list[AdapterView]:
        """Each LoRA alias is a model id of its own (OVMS `source_loras`)."""
        return [AdapterView(self, alias, alias) for alias in (self.loras.specs if self.loras else {})]

    def alias(self, model_id: str) -> AdapterView | None:
        if self.loras is not None and model_id in self.loras.specs:
            return AdapterView(self, model_id, model_id)
        return None

    # --- request preparation ----------------------------------------------------------------

    def prepare_generation(self, params: ImageParams) -> ImageJob:
        """Validate an images/generations request (InvalidRequest, HTTP 400, on any problem)."""
        prompt = self._check_common(params)
        width, height = self._size(params, self.default_size)
        return self._job(TEXT2IMAGE, prompt, params, width, height)

    def prepare_edit(self, params: ImageParams, image: bytes, mask: bytes | None) -> ImageJob:
        """Validate an images/edits request: image-to-image, or inpainting when a mask is given."""
        prompt = self._check_common(params)
        mode = INPAINTING if mask is not None else IMAGE2IMAGE
        if mode not in self.modes:
            raise InvalidRequest(f"Model {self.name} does not support {mode}", "mask" if mask else "image")
        for data, param in ((image, "image"), (mask, "mask")):
            if data is not None and len(data) > self.options.max_upload_bytes:
                raise InvalidRequest(
                    f"{param} is {len(data)} bytes, more than the limit of {self.options.max_upload_bytes} bytes",
                    param)
        pixels = decode_image(image, "image", self.options.max_size)
        mask_pixels = None
        if mask is not None:
            mask_pixels = decode_mask(mask, "mask", self.options.max_size)
            if mask_pixels.shape[:2] != pixels.shape[:2]:
                raise InvalidRequest(
                    f"mask is {mask_pixels.shape[1]}x{mask_pixels.shape[0]} but image is "
                    f"{pixels.shape[1]}x{pixels.shape[0]}: they must have the same size", "mask")
        factor = self.vae_scale_factor
        from_image = (max(factor, pixels.shape[1] // factor * factor), max(factor, pixels.shape[0] // factor * factor))
        width, height = self._size(params, self.options.static_size or from_image)
        job = self._job(mode, prompt, params, width, height)
        job.image, job.mask = pixels, mask_pixels
        return job

    def _check_common(self, params: ImageParams) -> str:
        if params.prompt is None:
            raise InvalidRequest("prompt field is missing", "prompt")
        if not params.prompt.strip():
            raise InvalidRequest("prompt must not be empty", "prompt")
        if params.response_format not in (None, "b64_json"):
            raise InvalidRequest(
                f"Unsupported response_format: {params.response_format}. Only b64_json is supported.",
                "response_format")
        return params.prompt

    def _size(self, params: ImageParams, fallback: tuple[int, int]) -> tuple[int, int]:
        if params.size is not None and (params.width is not None or params.height is not None):
            raise InvalidRequest("give either size or width/height, not both", "size")
        if params.size is not None and params.size != "auto":
            parsed = parse_size(params.size)
            if parsed is None:
                raise InvalidRequest("size field is not in correct format - WxH", "size")
            width, height = parsed
            param = "size"
        else:
            width = params.width if params.width is not None else fallback[0]
            height = params.height if params.height is not None else fallback[1]
            param = "width" if params.width is not None else "height" if params.height is not None else "size"
        if width <= 0 or height <= 0:
            raise InvalidRequest("size field values must be greater than 0", param)
        max_w, max_h = self.options.max_size
        if width > max_w or height > max_h:
            raise InvalidRequest(
                f"requested resolution {width}x{height} exceeds the maximum resolution {max_w}x{max_h}", param)
        static = self.options.static_size
        if static is not None and (width, height) != static:
            raise InvalidRequest(f"this model is compiled for the static resolution {static[0]}x{static[1]}, "
                                 f"got {width}x{height}", param)
        factor = self.vae_scale_factor
        if width % factor or height % factor:
            raise InvalidRequest(f"width and height must be multiples of {factor} for this model, "
                                 f"got {width}x{height}", param)
        return width, height

    def _job(self, mode: str, prompt: str, params: ImageParams, width: int, height: int) -> ImageJob:
        opts = self.options
        static_n = (self.options.num_images_per_prompt or 1) if self.options.static_size else None
        n = (static_n or 1) if params.n is None else params.n
        if static_n is not None and n != static_n:
            raise InvalidRequest(f"this model is compiled for n={static_n} (static shapes)", "n")
        if n < 1:
            raise InvalidRequest("num_images_per_prompt/n must be greater than 0", "n")
        if n > opts.max_num_images_per_prompt:
            raise InvalidRequest(
                f"num_images_per_prompt/n is greater than maxNumImagesPerPrompt: {opts.max_num_images_per_prompt}",
                "n")
        steps = opts.default_num_inference_steps if params.num_inference_steps is None else params.num_inference_steps
        if steps < 1:
            raise InvalidRequest("num_inference_steps must be greater than 0", "num_inference_steps")
        if steps > opts.max_num_inference_steps:
            raise InvalidRequest(
                f"num_inference_steps is greater than maxNumInferenceSteps: {opts.max_num_inference_steps}",
                "num_inference_steps")
        config: dict[str, Any] = {}
        if params.guidance_scale is not None:
            if not math.isfinite(params.guidance_scale) or params.guidance_scale < 0:
                raise InvalidRequest("guidance_scale must be a non-negative number", "guidance_scale")
            if self.static_guidance_scale is not None and params.guidance_scale != self.static_guidance_scale:
                raise InvalidRequest(f"this model is compiled for guidance_scale={self.static_guidance_scale} "
                                     "(static shapes)", "guidance_scale")
            config["guidance_scale"] = float(params.guidance_scale)
        if params.strength is not None:
            if not math.isfinite(params.strength) or not 0 <= params.strength <= 1:
                raise InvalidRequest("strength must be in the range [0, 1]", "strength")
            config["strength"] = float(params.strength)
        if params.max_sequence_length is not None:
            if params.max_sequence_length < 1:
                raise InvalidRequest("max_sequence_length must be greater than 0", "max_sequence_length")
            config["max_sequence_length"] = params.max_sequence_length
        for name in ("negative_prompt", "negative_prompt_2", "negative_prompt_3", "prompt_2", "prompt_3"):
            if getattr(params, name) is not None:
                config[name] = getattr(params, name)
        seed = params.rng_seed
        if seed is None:
            seed = random.getrandbits(31)  # as OpenAI: a different image each time unless a seed is given
        elif not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"seed must be in the range [0, {MAX_SEED}]", "seed")
        job = ImageJob(mode, prompt, width, height, n, steps, seed, config)
        job.lora_alphas = self._lora_alphas(params.lora_alphas)
        return job

    def _lora_alphas(self, alphas: dict[str, float] | None) -> dict[str, float]:
        if not alphas:
            return {}
        known = self.loras.specs if self.loras else {}
        for alias, alpha in alphas.items():
            if alias not in known:
                raise InvalidRequest(f"lora_alphas names {alias!r}, which is not a LoRA adapter of model {self.name} "
                                     f"(known: {', '.join(sorted(known)) or 'none'})", "lora_alphas")
            if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha):
                raise InvalidRequest(f"lora_alphas[{alias!r}] must be a finite number", "lora_alphas")
        return {alias: float(alpha) for alias, alpha in alphas.items()}

    def adapter_config(self, job: ImageJob) -> ov_genai.AdapterConfig:
        """The request's adapters: its model's alias at the configured alpha, then `lora_alphas` on top."""
        alphas = {job.adapter: self.loras.specs[job.adapter].alpha} if job.adapter else {}
        return self.loras.blend({**alphas, **job.lora_alphas})

    # --- generation (engine worker thread) --------------------------------------------------

    def generate(self, job: ImageJob, on_step: StepCallback) -> list[np.ndarray] | None:
        """Run one job; `on_step(step, num_steps)` after every denoising step returns True to cancel.

        Returns one [H, W, 3] uint8 array per image, or None when cancelled.
        """
        def callback(step: int, num_steps: int, _latent: Any) -> bool:
            return bool(on_step(step, num_steps))

        # GenAI's inpainting fails for num_images_per_prompt > 1 (latent shape check): one call per image.
        per_call = 1 if job.mode == INPAINTING and self.options.static_size is None else job.num_images
        images: list[np.ndarray] = []
        for call in range(job.num_images // per_call):
            kwargs = dict(job.config, width=job.width, height=job.height, num_inference_steps=job.num_inference_steps,
                          num_images_per_prompt=per_call, rng_seed=job.rng_seed + call, callback=callback)
            if self.loras is not None:  # always explicit: without it the output matched neither base nor adapter
                kwargs["adapters"] = self.adapter_config(job)
            try:
                if job.mode == TEXT2IMAGE:
                    result = self.text2image.generate(job.prompt, **kwargs)
                elif job.mode == IMAGE2IMAGE:
                    result = self.image2image.generate(job.prompt, ov.Tensor(job.image[None]), **kwargs)
                else:
                    result = self.inpainting.generate(job.prompt, ov.Tensor(job.image[None]),
                                                      ov.Tensor(job.mask[None]), **kwargs)
            except RuntimeError as exc:
                raise _generation_error(exc) from exc
            if len(result.shape) != 4 or result.shape[0] == 0:  # the callback cancelled it
                return None
            images.extend(np.array(result.data[i]) for i in range(result.shape[0]))
        return images

    @staticmethod
    def to_png(pixels: np.ndarray) -> bytes:
        return encode_png(pixels)


def _generation_error(exc: RuntimeError) -> Exception:
    """GenAI's argument checks (`Check '...' failed at file:line: message`) are the client's fault: 400."""
    text = str(exc)
    match = _GENAI_CHECK.search(text)
    if match and "openvino.genai" in text:
        return InvalidRequest(match.group(1).strip().splitlines()[0])
    return InferenceError(f"Image generation failed: {ov_message(exc)}")


def ov_message(exc: BaseException) -> str:
    """The informative part of an OpenVINO error: without the `Exception from file:line:` frames."""
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not re.fullmatch(r"Exception from \S+:\d+:", line)]
    return " ".join(lines) or type(exc).__name__


def _vae_scale_factor(path) -> int:
    """2 ** (number of VAE blocks - 1), read from the VAE decoder config (8 for real SD models)."""
    config = path / "vae_decoder" / "config.json"
    try:
        blocks = json.loads(config.read_text()).get("block_out_channels")
    except (OSError, ValueError):
        return 8
    return 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else 8
