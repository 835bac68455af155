"""POST /tokenize: token ids of a text (or texts) for any servable that provides `tokenize_texts`."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.requests import Request

from servables.errors import InvalidRequest

from .resolve import manager_of

router = APIRouter()


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: StrictStr = Field(min_length=1)
    text: StrictStr | list[StrictStr]
    add_special_tokens: StrictBool = True
    max_length: StrictInt | None = Field(default=None, gt=0)
    pad_to_max_length: StrictBool = False
    padding_side: Literal["left", "right"] = "right"


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, request: Request) -> dict:
    servable = manager_of(request).get(body.model).servable
    tokenize_texts = getattr(servable, "tokenize_texts", None)
    if tokenize_texts is None:
        raise InvalidRequest(f"Model {body.model} does not support tokenize", "model")
    texts = [body.text] if isinstance(body.text, str) else body.text
    if not texts:
        raise InvalidRequest("text must not be empty", "text")
    tokens = tokenize_texts(texts, add_special_tokens=body.add_special_tokens)
    if body.max_length is not None:
        tokens = [ids[: body.max_length] for ids in tokens]
        if body.pad_to_max_length:
            pad = getattr(getattr(servable, "tokenizer", None), "get_pad_token_id", lambda: 0)()
            padded = []
            for ids in tokens:
                filler = [pad] * (body.max_length - len(ids))
                padded.append(filler + ids if body.padding_side == "left" else ids + filler)
            tokens = padded
    elif body.pad_to_max_length:
        raise InvalidRequest("pad_to_max_length needs max_length", "pad_to_max_length")
    return {"tokens": tokens[0] if isinstance(body.text, str) else tokens}
