"""The OpenAI embeddings wire protocol as pydantic models (strict types, unknown fields are a 400)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ..limits import INT32_MAX

if TYPE_CHECKING:
    from typing_extensions import TypeIs



class EmbeddingItem(BaseModel):
    """A multimodal input: `{"image": "<data: or http(s) URL>", "text": "..."}` (either or both)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image: StrictStr | None = Field(default=None, min_length=1)
    text: StrictStr | None = None


EmbeddingInput = (StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
                  | list[StrictStr | EmbeddingItem])


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: StrictStr = Field(min_length=1)
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, gt=0, le=INT32_MAX)
    user: StrictStr | None = None  # accepted and ignored, as OpenAI does

    def inputs(self) -> list[str] | list[list[int]] | list[str | EmbeddingItem]:
        """The inputs as a list: one string, strings, one token-id list, or token-id lists."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if _token_ids(value):
            return [value]  # a single pre-tokenised input
        return value.copy()


def _token_ids(value: list[str] | list[int] | list[list[int]] | list[str | EmbeddingItem]) -> TypeIs[list[int]]:
    """pydantic validated the list whole as one of the three: its first item tells which."""
    return bool(value) and isinstance(value[0], int)
