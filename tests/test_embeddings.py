"""OpenAI /embeddings on the real MiniLM (OpenVINO IR converted by the server's own code)."""
from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openai
import pytest

from tests.fixtures_embed import MINILM, MINILM_SERIAL, MINILM_TRUNC, SERIAL_QUEUE, minilm_source
from tests.helpers import metric, wait_for

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The stock market fell sharply today.",
    "A man is riding a horse.",
    "A man is riding a white horse on an enclosed ground.",
    "Someone plays the violin.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers on the same HuggingFace folder the server's IR was converted from."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_source()), device="cpu")
    return model.encode(SENTENCES, normalize_embeddings=True)


def _matrix(response) -> np.ndarray:
    return np.asarray([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)


def test_float_and_base64_embeddings_match_sentence_transformers(embed_client, reference):
    as_float = _matrix(embed_client.embeddings.create(model=MINILM, input=SENTENCES, encoding_format="float"))
    as_base64 = _matrix(embed_client.embeddings.create(model=MINILM, input=SENTENCES))  # the SDK asks for base64
    assert as_float.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(as_float, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(as_base64, as_float, atol=1e-6)
    np.testing.assert_allclose(as_float @ as_float.T, reference @ reference.T, atol=1e-3)


def test_base64_is_little_endian_float32(embed_http):
    body = {"model": MINILM, "input": "hello world"}
    floats = embed_http.post("/v3/embeddings", json=body).json()["data"][0]["embedding"]
    encoded = embed_http.post("/v3/embeddings", json={**body, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats, atol=1e-7)
    assert encoded["object"] == "list" and encoded["data"][0]["object"] == "embedding"


def test_related_sentences_score_above_unrelated(embed_client):
    m = _matrix(embed_client.embeddings.create(model=MINILM, input=SENTENCES, encoding_format="float"))
    cos = m @ m.T
    assert cos[0, 1] > cos[0, 2] + 0.3  # eating food ~ eating bread, not the stock market
    assert cos[3, 4] > cos[3, 5] + 0.3  # riding a horse ~ riding a white horse, not the violin


def test_token_id_inputs_equal_text_inputs_and_usage_counts_tokens(embed_client, hf_tokenizer):
    texts = ["the cat sat on the mat", "paris is the capital of france"]
    ids = [hf_tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    by_text = embed_client.embeddings.create(model=MINILM, input=texts, encoding_format="float")
    by_ids = embed_client.embeddings.create(model=MINILM, input=ids, encoding_format="float")
    one_id_list = embed_client.embeddings.create(model=MINILM, input=ids[0], encoding_format="float")
    one_text = embed_client.embeddings.create(model=MINILM, input=texts[0], encoding_format="float")
    np.testing.assert_allclose(_matrix(by_ids), _matrix(by_text), atol=1e-5)
    np.testing.assert_allclose(_matrix(one_id_list), _matrix(one_text), atol=1e-5)
    expected = sum(len(i) + 2 for i in ids)  # [CLS] ... [SEP]
    assert by_text.usage.prompt_tokens == by_text.usage.total_tokens == expected
    assert one_text.usage.prompt_tokens == len(ids[0]) + 2


def test_over_long_input_is_a_400_naming_it_unless_the_model_truncates(embed_client):
    long_text = "word " * 300
    with pytest.raises(openai.BadRequestError) as err:
        embed_client.embeddings.create(model=MINILM, input=["short", long_text])
    assert "input[1] has 302 tokens" in err.value.message and "256" in err.value.message
    truncated = embed_client.embeddings.create(model=MINILM_TRUNC, input=["short", long_text])
    assert len(truncated.data) == 2 and truncated.usage.prompt_tokens == 3 + 256


def test_dimensions_only_where_the_model_allows_truncating(embed_client):
    full = _matrix(embed_client.embeddings.create(model=MINILM_TRUNC, input="hello", encoding_format="float"))
    cut = _matrix(embed_client.embeddings.create(model=MINILM_TRUNC, input="hello", dimensions=128,
                                                 encoding_format="float"))
    assert cut.shape == (1, 128)
    np.testing.assert_allclose(np.linalg.norm(cut), 1.0, atol=1e-5)
    np.testing.assert_allclose(cut[0], full[0, :128] / np.linalg.norm(full[0, :128]), atol=1e-5)
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        embed_client.embeddings.create(model=MINILM, input="hello", dimensions=128)
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        embed_client.embeddings.create(model=MINILM_TRUNC, input="hello", dimensions=100)
    assert len(embed_client.embeddings.create(model=MINILM, input="hello", dimensions=384).data[0].embedding) > 0


def _batches(http) -> float:
    return metric(http, "genai_batches_total", name=MINILM)


def test_concurrent_requests_are_batched_and_equal_unbatched_results(embed_http):
    texts = [f"sentence number {i} about {topic}" for i, topic in
             enumerate(["cats", "dogs", "stocks", "music", "rain", "trains", "bread", "chess"] * 4)]

    def embed(text: str) -> np.ndarray:
        response = embed_http.post("/v3/embeddings", json={"model": MINILM, "input": text,
                                                           "encoding_format": "float"})
        assert response.status_code == 200, response.text
        return np.asarray(response.json()["data"][0]["embedding"])

    before = _batches(embed_http)
    alone = [embed(t) for t in texts]  # one at a time: every request is its own inference
    assert _batches(embed_http) - before == len(texts)
    before = _batches(embed_http)
    with ThreadPoolExecutor(len(texts)) as pool:
        together = list(pool.map(embed, texts))
    inferences = _batches(embed_http) - before
    assert 1 <= inferences < len(texts)
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-5)


def test_a_full_queue_is_a_503_with_retry_after_and_nothing_is_lost(embed_http, embed_server):
    """Served with max_batch_size 1, a 200-text request keeps the queue busy for 200 inferences."""
    big = [f"text number {i} about something else entirely" for i in range(200)]
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(embed_http.post, E, json={"model": MINILM_SERIAL, "input": big})
        wait_for(lambda: first.done() or metric(embed_http, "genai_requests_waiting", name=MINILM_SERIAL)
                 > SERIAL_QUEUE, 120, 0.01, "the queue full")
        refused = embed_http.post(E, json={"model": MINILM_SERIAL, "input": "one more"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] and "retry later" in refused.json()["error"]["message"]
        response = first.result()
    assert response.status_code == 200 and [d["index"] for d in response.json()["data"]] == list(range(200))
    assert embed_http.post(E, json={"model": MINILM_SERIAL, "input": "one more"}).status_code == 200


def test_default_server_serves_minilm(client):
    """`genai-gateway serve` with no model flags serves MiniLM next to the LLM."""
    name = "sentence-transformers/all-MiniLM-L6-v2"
    model = client.models.retrieve(name)
    assert model.model_extra["kind"] == "embeddings"
    assert len(client.embeddings.create(model=name, input="hello").data[0].embedding) == 384


E = "/v3/embeddings"
VALIDATION_CASES = [
    # body, status, fragment of error.message, error.param
    pytest.param({"input": "hi"}, 400, "model", "model", id="model-missing"),
    pytest.param({"model": MINILM}, 400, "input", "input", id="input-missing"),
    pytest.param({"model": MINILM, "input": ""}, 400, "empty", "input", id="input-empty-string"),
    pytest.param({"model": MINILM, "input": []}, 400, "should not be empty", "input", id="input-empty-list"),
    pytest.param({"model": MINILM, "input": [[]]}, 400, "inner arrays", "input", id="input-empty-token-list"),
    pytest.param({"model": MINILM, "input": ["ok", ""]}, 400, "input[1]", "input", id="input-second-empty"),
    pytest.param({"model": MINILM, "input": ["a", 1]}, 400, "input", "input", id="input-mixed-types"),
    pytest.param({"model": MINILM, "input": 5}, 400, "input", "input", id="input-number"),
    pytest.param({"model": MINILM, "input": [[1, 2], ["a"]]}, 400, "input", "input", id="input-ragged-ids"),
    pytest.param({"model": MINILM, "input": [10 ** 9]}, 400, "outside the vocabulary", "input",
                 id="input-token-outside-vocabulary"),
    pytest.param({"model": MINILM, "input": "hi", "encoding_format": "int8"}, 400, "encoding_format",
                 "encoding_format", id="encoding_format-int8"),
    pytest.param({"model": MINILM, "input": "hi", "dimensions": 0}, 400, "dimensions", "dimensions",
                 id="dimensions-zero"),
    pytest.param({"model": MINILM, "input": "hi", "dimensions": "64"}, 400, "dimensions", "dimensions",
                 id="dimensions-string"),
    pytest.param({"model": MINILM, "input": "hi", "bogus": 1}, 400, "bogus", "bogus", id="unknown-field"),
    pytest.param({"model": "no-such-model", "input": "hi"}, 404, "no-such-model", "model", id="unknown-model"),
    pytest.param({"model": "tiny-cross-encoder", "input": "hi"}, 400, "does not serve embeddings", "model",
                 id="rerank-model"),
]


@pytest.mark.parametrize("body,status,fragment,param", VALIDATION_CASES)
def test_invalid_embedding_requests_fail_cleanly_and_the_server_keeps_serving(embed_http, body, status, fragment,
                                                                              param):
    response = embed_http.post(E, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"]
    assert error["param"] == param, error
    good = embed_http.post(E, json={"model": MINILM, "input": "still works"})
    assert good.status_code == 200 and len(good.json()["data"]) == 1


def test_without_conversion_tools_the_default_server_warns_and_serves_the_llm_only(monkeypatch, tmp_path, caplog):
    from gateway import cli
    from servables import sources

    monkeypatch.setenv("GENAI_GATEWAY_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(sources, "conversion_available", lambda: False)
    specs = cli.model_specs(cli.build_parser().parse_args(["serve"]))
    assert [s.task for s in specs] == ["text_generation"]
    assert "not serving the default embedding model" in caplog.text and "genai-gateway[convert]" in caplog.text
