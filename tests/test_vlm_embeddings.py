"""Image and text embeddings in one vector space (`EmbeddingPipeline`) on `/v3/embeddings`, tiny random Qwen2-VL.

Inputs are strings or `{"image": "<URL>", "text": "..."}` items; the vectors mean nothing, but
images must reach the model (they change the vector), text must embed the same alone or mixed
with images, and the limits and refusals are the chat ones.
"""
from __future__ import annotations

import numpy as np
import openai
import pytest

from tests.fixtures_vlm import VLM_EMBED, data_url, image_bytes


@pytest.fixture(scope="module")
def client(vlm_embed_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vlm_embed_server.url}/v3", api_key="unused", max_retries=0)


def vectors(client: openai.OpenAI, inputs: list, model: str = VLM_EMBED) -> np.ndarray:
    response = client.embeddings.create(model=model, input=inputs)
    assert [d.index for d in response.data] == list(range(len(inputs)))
    return np.asarray([d.embedding for d in response.data])


def test_images_and_texts_share_one_vector_space(client):
    a, b = data_url(image_bytes(0)), data_url(image_bytes(1))
    mixed = vectors(client, ["a cat", {"image": a}, {"image": b}, {"image": a, "text": "a cat"}, {"image": a}])
    assert mixed.shape[0] == 5 and np.allclose(np.linalg.norm(mixed, axis=1), 1, atol=1e-4)
    assert np.array_equal(mixed[1], mixed[4])  # the same image, the same vector
    assert not np.allclose(mixed[1], mixed[2])  # another image, another vector
    assert not np.allclose(mixed[1], mixed[3])  # the text changes the image's vector
    alone = vectors(client, ["a cat", {"text": "a cat"}])
    np.testing.assert_allclose(alone[0], mixed[0], atol=1e-6)  # text embeds the same beside images
    np.testing.assert_allclose(alone[1], mixed[0], atol=1e-6)


def test_image_refusals_are_400s_naming_the_input(client):
    url = data_url(image_bytes(0))
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="minilm", input=["hi", {"image": url}])
    assert err.value.body["param"] == "input[1].image"
    assert "Model minilm does not accept images" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=VLM_EMBED, input=[{"image": "https://example.com/a.png"}])
    assert err.value.body["param"] == "input[0].image" and "--allowed_media_domains" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=VLM_EMBED, input=[{"image": url}] * 5)
    assert err.value.body["param"] == "input[4].image"
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=VLM_EMBED, input=[{"image": data_url(b"not an image")}])
    assert err.value.body["param"] == "input[0].image"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=VLM_EMBED, input=[{"picture": url}])
    assert vectors(client, ["still serving"]).shape[0] == 1


def test_models_list_shows_image_input(client):
    models = {m.id: m.model_extra for m in client.models.list().data}
    assert models[VLM_EMBED]["input_modalities"] == ["text", "image"]
