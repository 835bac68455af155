"""The Cohere rerank wire protocol (v1 and v2 request shapes) as pydantic models."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from servables.errors import InvalidRequest

from .limits import INT32_MAX, INT32_MIN


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: StrictStr = Field(min_length=1)
    query: StrictStr
    documents: list[StrictStr | dict[str, Any]]  # objects: `text` is scored, the rest returned as given
    top_n: StrictInt | None = Field(default=None, gt=0, le=INT32_MAX)
    return_documents: StrictBool = False
    rank_fields: list[StrictStr] | None = None
    max_chunks_per_doc: StrictInt | None = Field(default=None, gt=0, le=INT32_MAX)
    max_tokens_per_doc: StrictInt | None = Field(default=None, gt=0, le=INT32_MAX)  # v2: documents are cut to this
    priority: StrictInt | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)  # v2: accepted, one queue for all
    relevant_spans: Any = None  # v2: not supported

    def texts(self) -> list[str]:
        """The text of every document; checks what the scorer cannot serve."""
        if self.relevant_spans is not None:
            raise InvalidRequest("relevant_spans is not supported", "relevant_spans")
        if self.rank_fields not in (None, ["text"]):
            raise InvalidRequest("rank_fields is not supported: only the `text` field is ranked", "rank_fields")
        if not self.query:
            raise InvalidRequest("query must not be empty", "query")
        if not self.documents:
            raise InvalidRequest("documents should not be empty", "documents")
        if len({isinstance(d, str) for d in self.documents}) > 1:
            raise InvalidRequest("all documents have to be the same type (string or objects)", "documents")
        for index, document in enumerate(self.documents):
            if isinstance(document, dict) and not isinstance(document.get("text"), str):
                raise InvalidRequest(f"documents[{index}] must have a string `text` field", "documents")
        return [d if isinstance(d, str) else d["text"] for d in self.documents]

    def document_body(self, index: int) -> dict[str, Any]:
        document = self.documents[index]
        return {"text": document} if isinstance(document, str) else document
