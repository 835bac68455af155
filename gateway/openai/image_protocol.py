"""The OpenAI images wire protocol (generations as JSON, edits as multipart form fields).

As in OVMS, unknown fields are rejected (`background`, `quality`, `style`, `user`, `stream`,
`partial_images` ... are 400s). The OVMS extensions map 1:1 onto `ImageGenerationConfig`.
Generations are strictly typed (a string where a number belongs is a 400); edit form fields
arrive as text and are converted, so "2" is a valid `n` there but "two" is not.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from servables.errors import InvalidRequest
from servables.image import ImageParams

from ..limits import INT32_MAX, INT64_MAX


class _ImageFields(BaseModel):
    model: str = Field(min_length=1)
    prompt: str
    n: int | None = Field(default=None, ge=1, le=INT32_MAX)
    num_images_per_prompt: int | None = Field(default=None, ge=1, le=INT32_MAX)
    size: str | None = None
    width: int | None = Field(default=None, ge=1, le=INT32_MAX)
    height: int | None = Field(default=None, ge=1, le=INT32_MAX)
    response_format: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=INT32_MAX)
    guidance_scale: float | None = None
    strength: float | None = None
    seed: int | None = Field(default=None, ge=0, le=INT64_MAX)  # the bindings take int64
    rng_seed: int | None = Field(default=None, ge=0, le=INT64_MAX)
    negative_prompt: str | None = None
    negative_prompt_2: str | None = None
    negative_prompt_3: str | None = None
    prompt_2: str | None = None
    prompt_3: str | None = None
    max_sequence_length: int | None = Field(default=None, ge=1, le=INT32_MAX)
    lora_alphas: dict[str, float] | None = None  # LoRA alias -> alpha (models served with source_loras)

    def to_params(self) -> ImageParams:
        for a, b in (("n", "num_images_per_prompt"), ("seed", "rng_seed")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise InvalidRequest(f"give either {a} or {b}, not both", b)
        return ImageParams(
            prompt=self.prompt, n=self.n if self.n is not None else self.num_images_per_prompt, size=self.size,
            width=self.width, height=self.height, num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale, strength=self.strength,
            rng_seed=self.seed if self.seed is not None else self.rng_seed,
            negative_prompt=self.negative_prompt, negative_prompt_2=self.negative_prompt_2,
            negative_prompt_3=self.negative_prompt_3, prompt_2=self.prompt_2, prompt_3=self.prompt_3,
            max_sequence_length=self.max_sequence_length, response_format=self.response_format,
            lora_alphas=self.lora_alphas,
        )


class ImageGenerationRequest(_ImageFields):
    """POST /images/generations (application/json)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ImageEditRequest(_ImageFields):
    """The text fields of POST /images/edits (multipart/form-data); `image` and `mask` are files."""

    model_config = ConfigDict(extra="forbid", strict=False)


EDIT_FILE_FIELDS = ("image", "mask")
