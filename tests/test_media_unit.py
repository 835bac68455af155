"""Unit tests of the image-input helpers: data URLs, the local-file policy, image tags in the prompt."""
from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from gateway.media import MediaPolicy, fetch_bytes
from servables.errors import InvalidRequest
from servables.vision import strip_image_tags, with_image_tags

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")  # 1x1


DEFAULT = MediaPolicy()


def fetch(url: str, policy: MediaPolicy = DEFAULT) -> bytes:
    return asyncio.run(fetch_bytes(url, "messages[0].content[0]", policy))


def refusal(url: str, policy: MediaPolicy = DEFAULT) -> str:
    with pytest.raises(InvalidRequest) as err:
        fetch(url, policy)
    assert err.value.param == "messages[0].content[0]"
    return err.value.message


def test_data_urls():
    assert fetch("data:image/png;base64," + base64.b64encode(PNG).decode()) == PNG
    assert "base64-encoded" in refusal("data:image/png,rawbytes")
    assert "no comma" in refusal("data:image/png;base64")
    assert "image/*" in refusal("data:;base64,AAAA")
    assert "larger than 10 bytes" in refusal("data:image/png;base64," + "A" * 40, MediaPolicy(max_image_bytes=10))


def test_local_files_stay_inside_the_allowed_folder(tmp_path: Path):
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    (root / "inside-link.png").symlink_to(root / "sub" / "a.png")
    policy = MediaPolicy(allowed_local_path=root)
    assert fetch("sub/a.png", policy) == PNG
    assert fetch((root / "sub" / "a.png").as_uri(), policy) == PNG
    assert fetch(str(root / "inside-link.png"), policy) == PNG  # a symlink that stays inside is fine
    assert "'..'" in refusal("sub/../sub/a.png", policy)
    assert "outside" in refusal(str(tmp_path / "secret.png"), policy)
    assert "outside" in refusal("link.png", policy)
    assert "no such image file" in refusal("missing.png", policy)
    assert "not a file" in refusal("sub", policy)
    assert "--allowed_local_media_path" in refusal(str(root / "sub" / "a.png"))


def test_remote_hosts_must_be_listed():
    assert "--allowed_media_domains" in refusal("http://127.0.0.1:1/a.png")
    assert "--allowed_media_domains" in refusal("https://Example.com/a.png", MediaPolicy(
        allowed_domains=frozenset({"example.org"})))


def test_image_tags_stand_where_the_parts_stood():
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Compare "}, {"type": "image"},
                                             {"type": "text", "text": " and "}, {"type": "image"}]}]
    tagged, count = with_image_tags(messages)
    assert count == 2
    assert tagged[0] == messages[0]
    assert tagged[1]["content"] == "Compare <ov_genai_image_0> and <ov_genai_image_1>"
    assert strip_image_tags(tagged[1]["content"], count) == "Compare  and "
