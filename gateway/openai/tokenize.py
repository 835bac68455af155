"""POST /tokenize: token ids of a text (or texts), for the kinds that list "tokenize" (servables/kinds.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.requests import Request

from gateway.openapi_models import TokenizeResponse
from gateway.routes import Api, declared_router
from servables.errors import InvalidRequest

from .resolve import resolve

router = declared_router(api=Api.V3)
MAX_PADDED_LENGTH = 2**20  # longer than any model's context
MAX_PADDED_TOKENS = 2**22  # texts x max_length when padding: bounds the size of the answer


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: StrictStr = Field(min_length=1)
    text: StrictStr | list[StrictStr]
    add_special_tokens: StrictBool = True
    max_length: StrictInt | None = Field(default=None, gt=0, le=MAX_PADDED_LENGTH)
    pad_to_max_length: StrictBool = False
    padding_side: Literal["left", "right"] = "right"


@router.post("/tokenize", response_model=None, responses={200: {"model": TokenizeResponse}})
async def tokenize(body: TokenizeRequest, request: Request) -> dict:
    servable = resolve(request, body.model, "tokenize").servable
    tokenize_texts = servable.tokenize_texts  # the kinds that serve "tokenize" have it
    texts = [body.text] if isinstance(body.text, str) else body.text
    if not texts:
        raise InvalidRequest("text must not be empty", "text")
    tokens = tokenize_texts(texts, add_special_tokens=body.add_special_tokens)
    if body.max_length is not None:
        tokens = [ids[: body.max_length] for ids in tokens]
        if body.pad_to_max_length:
            if len(texts) * body.max_length > MAX_PADDED_TOKENS:
                raise InvalidRequest(f"padding {len(texts)} texts to max_length {body.max_length} gives more than "
                                     f"{MAX_PADDED_TOKENS} tokens", "max_length")
            pad = getattr(getattr(servable, "tokenizer", None), "get_pad_token_id", lambda: 0)()
            padded = []
            for ids in tokens:
                filler = [pad] * (body.max_length - len(ids))
                padded.append(filler + ids if body.padding_side == "left" else ids + filler)
            tokens = padded
    elif body.pad_to_max_length:
        raise InvalidRequest("pad_to_max_length needs max_length", "pad_to_max_length")
    return {"tokens": tokens[0] if isinstance(body.text, str) else tokens}
