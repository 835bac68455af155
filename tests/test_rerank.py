"""Cohere rerank (/v1, /v2, /v3) with the real cohere SDK: by an embedding model (cosine) and by a
tiny cross-encoder through TextRerankPipeline, including documents longer than its context."""
from __future__ import annotations

import json

import cohere
import httpx
import pytest

from tests.fixtures_embed import CE_CONTEXT, CE_MAX_CHUNKS, CROSS_ENCODER, MINILM
from tests.helpers import write_config
from tests.server import ServerProcess

QUERY = "What is the capital of France?"
DOCS = [
    "Bananas are rich in potassium.",
    "The stock market closed higher on Friday.",
    "Paris is the capital of France.",
    "Cats sleep for most of the day.",
]
PARIS = 2


@pytest.fixture(scope="module")
def co_v1(embed_server) -> cohere.Client:
    return cohere.Client(base_url=embed_server.url, api_key="x")


@pytest.fixture(scope="module")
def co_v2(embed_server) -> cohere.ClientV2:
    return cohere.ClientV2(base_url=embed_server.url, api_key="x")


def test_cohere_v1_ranks_the_answer_first(co_v1):
    response = co_v1.rerank(model=MINILM, query=QUERY, documents=DOCS)
    assert [r.index for r in response.results][0] == PARIS
    scores = [r.relevance_score for r in response.results]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(DOCS)
    assert sorted(r.index for r in response.results) == list(range(len(DOCS)))
    assert response.id and response.meta.api_version.version == "1"
    assert all(r.document is None for r in response.results)


def test_cohere_v1_top_n_and_return_documents(co_v1):
    response = co_v1.rerank(model=MINILM, query=QUERY, documents=DOCS, top_n=2, return_documents=True)
    assert len(response.results) == 2
    assert response.results[0].document.text == DOCS[PARIS]
    everything = co_v1.rerank(model=MINILM, query=QUERY, documents=DOCS, top_n=50)  # more than there are: fine
    assert len(everything.results) == len(DOCS)


def test_object_documents_are_scored_by_text_and_returned_whole(co_v1, embed_http):
    objects = [{"text": d, "id": f"doc-{i}"} for i, d in enumerate(DOCS)]
    response = co_v1.rerank(model=MINILM, query=QUERY, documents=objects, return_documents=True)
    assert response.results[0].index == PARIS and response.results[0].document.text == DOCS[PARIS]
    raw = embed_http.post("/v3/rerank", json={"model": MINILM, "query": QUERY, "documents": objects,
                                              "return_documents": True, "top_n": 1}).json()
    assert raw["results"][0]["document"] == {"text": DOCS[PARIS], "id": f"doc-{PARIS}"}


def test_cohere_v2_ranks_the_answer_first(co_v2):
    response = co_v2.rerank(model=MINILM, query=QUERY, documents=DOCS, top_n=3)
    assert len(response.results) == 3 and response.results[0].index == PARIS
    assert response.meta.api_version.version == "2"


def test_models_say_which_kind_of_reranker(embed_http):
    models = {m["id"]: m for m in embed_http.get("/v3/models").json()["data"]}
    assert models[MINILM]["kind"] == "embeddings" and "rerank" in models[MINILM]["endpoints"]
    assert models[MINILM]["rerank_scoring"] == "cosine_similarity"
    assert models[CROSS_ENCODER]["kind"] == "rerank" and models[CROSS_ENCODER]["max_model_len"] == CE_CONTEXT


# --- the tiny cross-encoder through TextRerankPipeline --------------------------------------------

def test_cross_encoder_scores_every_document_with_the_sdks(co_v1, co_v2):
    v1 = co_v1.rerank(model=CROSS_ENCODER, query=QUERY, documents=DOCS)
    v2 = co_v2.rerank(model=CROSS_ENCODER, query=QUERY, documents=DOCS)
    scores = [r.relevance_score for r in v1.results]
    assert all(0.0 < s < 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert len(set(round(s, 6) for s in scores)) > 1  # a real model: documents score differently
    assert [(r.index, round(r.relevance_score, 5)) for r in v2.results] == \
        [(r.index, round(r.relevance_score, 5)) for r in v1.results]


WORDS = ["apple", "river", "house", "green", "music", "table", "stone", "light", "paper", "water", "horse",
         "chair", "bread", "cloud", "night", "money", "sugar", "train", "glass", "field"]


def _single_token_chunks(hf_tokenizer, query: str) -> tuple[int, list[str]]:
    """Three different chunks, each exactly as long as the server's chunk for `query`."""
    assert all(len(hf_tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in WORDS)
    size = CE_CONTEXT - len(hf_tokenizer(query, add_special_tokens=False)["input_ids"]) - 4
    chunks = [" ".join(WORDS[(i * 7 + k * (3 + i)) % len(WORDS)] for k in range(size)) for i in range(3)]
    return size, chunks


def test_documents_longer_than_the_context_score_the_max_over_their_chunks(embed_http, hf_tokenizer):
    query = "capital"
    _, chunks = _single_token_chunks(hf_tokenizer, query)

    def rerank(documents, **extra):
        response = embed_http.post("/v1/rerank", json={"model": CROSS_ENCODER, "query": query,
                                                       "documents": documents, **extra})
        assert response.status_code == 200, response.text
        return {r["index"]: r["relevance_score"] for r in response.json()["results"]}

    alone = rerank(chunks)
    low, mid, high = sorted(range(3), key=alone.get)
    long_doc = " ".join([chunks[low], chunks[mid], chunks[high]])  # best part last: truncation would miss it
    assert len(hf_tokenizer(long_doc)["input_ids"]) > CE_CONTEXT
    scores = rerank([long_doc, *chunks])
    assert scores[0] == pytest.approx(alone[high], abs=1e-5)
    assert abs(scores[0] - alone[low]) > 1e-4
    first_only = rerank([long_doc], max_chunks_per_doc=1)
    assert first_only[0] == pytest.approx(alone[low], abs=1e-5)


def test_chunk_limit_is_a_400_and_the_server_keeps_serving(embed_http, co_v1):
    too_long = " ".join(WORDS * 30)  # 600 tokens: about 10 chunks of 59
    response = embed_http.post("/v3/rerank", json={"model": CROSS_ENCODER, "query": "capital",
                                                   "documents": [too_long]})
    assert response.status_code == 400 and "max_allowed_chunks" in response.json()["error"]["message"]
    response = embed_http.post("/v3/rerank", json={"model": CROSS_ENCODER, "query": "capital",
                                                   "documents": ["a"] * (CE_MAX_CHUNKS + 1)})
    assert response.status_code == 400 and "Number of documents exceeds" in response.json()["error"]["message"]
    assert len(co_v1.rerank(model=CROSS_ENCODER, query="capital", documents=DOCS).results) == len(DOCS)


R = "/v1/rerank"
GOOD = {"model": MINILM, "query": QUERY, "documents": DOCS}
VALIDATION_CASES = [
    # body, status, fragment of error.message, error.param
    pytest.param({"query": QUERY, "documents": DOCS}, 400, "model", "model", id="model-missing"),
    pytest.param({"model": MINILM, "documents": DOCS}, 400, "query", "query", id="query-missing"),
    pytest.param({**GOOD, "query": 5}, 400, "query", "query", id="query-number"),
    pytest.param({**GOOD, "query": ""}, 400, "query", "query", id="query-empty"),
    pytest.param({"model": MINILM, "query": QUERY}, 400, "documents", "documents", id="documents-missing"),
    pytest.param({**GOOD, "documents": "one doc"}, 400, "documents", "documents", id="documents-string"),
    pytest.param({**GOOD, "documents": []}, 400, "documents should not be empty", "documents",
                 id="documents-empty"),
    pytest.param({**GOOD, "documents": ["a", {"text": "b"}]}, 400, "same type", "documents", id="documents-mixed"),
    pytest.param({**GOOD, "documents": [{"title": "no text"}]}, 400, "text", "documents",
                 id="document-without-text"),
    pytest.param({**GOOD, "documents": [1, 2]}, 400, "documents", "documents.0", id="documents-numbers"),
    pytest.param({**GOOD, "top_n": 0}, 400, "top_n", "top_n", id="top_n-zero"),
    pytest.param({**GOOD, "top_n": "2"}, 400, "top_n", "top_n", id="top_n-string"),
    pytest.param({**GOOD, "return_documents": "yes"}, 400, "return_documents", "return_documents",
                 id="return_documents-string"),
    pytest.param({**GOOD, "max_chunks_per_doc": 0}, 400, "max_chunks_per_doc", "max_chunks_per_doc",
                 id="max_chunks_per_doc-zero"),
    pytest.param({**GOOD, "rank_fields": ["title"]}, 400, "rank_fields", "rank_fields", id="rank_fields-unsupported"),
    pytest.param({**GOOD, "relevant_spans": {"mode": "auto"}}, 400, "relevant_spans", "relevant_spans",
                 id="relevant_spans-unsupported"),
    pytest.param({**GOOD, "bogus": True}, 400, "bogus", "bogus", id="unknown-field"),
    pytest.param({**GOOD, "model": "no-such-model"}, 404, "no-such-model", "model", id="unknown-model"),
]


@pytest.mark.parametrize("body,status,fragment,param", VALIDATION_CASES)
def test_invalid_rerank_requests_fail_cleanly_and_the_server_keeps_serving(embed_http, body, status, fragment, param):
    response = embed_http.post(R, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"]
    assert error["param"] == param, error
    good = embed_http.post(R, json=GOOD)
    assert good.status_code == 200 and good.json()["results"][0]["index"] == PARIS


def test_a_decoder_llm_is_refused_as_a_reranker_instead_of_crashing(tmp_path):
    """TextRerankPipeline aborts the process on a plain decoder IR: the server must refuse it at load."""
    model = tmp_path / "llama-ir"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    (model / "openvino_model.xml").write_text("<net/>")
    config = write_config(tmp_path / "config.json", [
        {"name": "not-a-reranker", "base_path": str(model), "task": "rerank"}])
    server = ServerProcess("--config_path", str(config), log_name="bad-reranker").start(timeout=120)
    try:
        status = httpx.get(f"{server.url}/v1/config").json()["not-a-reranker"]["model_version_status"][0]
        assert "is not a reranker" in status["status"]["error_message"]
        response = httpx.post(f"{server.url}/v3/rerank", json={"model": "not-a-reranker", "query": "q",
                                                               "documents": ["d"]})
        assert response.status_code >= 400 and server.proc.poll() is None  # refused, and still running
    finally:
        server.stop()
