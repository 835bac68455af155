"""Incremental detokenization on the real SmolLM2 tokenizer: multi-byte characters survive."""
from __future__ import annotations

import random

import openvino_genai as ov_genai
import pytest

from servables.detokenizer import SequenceText, TokenPieces, decode_steps
from servables.sources import DEFAULT_LLM_PACKAGE, packaged_gguf

TEXT = "Hello 😀🎉 世界 кот — naïve café 👩‍👩‍👧"


@pytest.fixture(scope="module")
def tokenizer():
    return ov_genai.Tokenizer(str(packaged_gguf(DEFAULT_LLM_PACKAGE)))


@pytest.mark.parametrize("step", [1, 2, 3])
def test_token_by_token_stream_reproduces_emoji_and_cjk(tokenizer, step):
    ids = tokenizer.encode(TEXT, add_special_tokens=False).input_ids.data[0].tolist()
    naive = "".join(tokenizer.decode([i]) for i in ids)
    assert naive != TEXT  # decoding token by token really loses characters
    seq, out = SequenceText(), []
    for start in range(0, len(ids), step):
        seq.ids.extend(ids[start:start + step])
        out.append(decode_steps(tokenizer, [seq], [start + step >= len(ids)])[0])
    assert "".join(out) == TEXT
    assert all("\ufffd" not in piece for piece in out)


def test_several_sequences_decode_in_one_batch(tokenizer):
    texts = ["naïve 世界", "plain ascii", "🎉🎉"]
    ids = [tokenizer.encode(t, add_special_tokens=False).input_ids.data[0].tolist() for t in texts]
    seqs = [SequenceText() for _ in texts]
    outs = ["", "", ""]
    for position in range(max(map(len, ids))):
        active = [i for i in range(3) if position < len(ids[i])]
        for i in active:
            seqs[i].ids.append(ids[i][position])
        pieces = decode_steps(tokenizer, [seqs[i] for i in active], [position == len(ids[i]) - 1 for i in active])
        for i, piece in zip(active, pieces, strict=False):
            outs[i] += piece
    assert outs == texts


@pytest.fixture(scope="module")
def pieces(tokenizer):
    return TokenPieces(tokenizer)


def test_byte_level_tokenizer_takes_the_fast_path(pieces):
    assert pieces.exact  # SmolLM2's byte-level BPE: joined token texts are its decode


@pytest.mark.parametrize("step", [1, 2])
def test_fast_path_streams_emoji_and_cjk_like_the_whole_decode(tokenizer, pieces, step):
    text = TEXT + " It 's fine , ok . Done"
    ids = tokenizer.encode(text, add_special_tokens=False).input_ids.data[0].tolist()
    seq, out = SequenceText(), []
    for start in range(0, len(ids), step):
        seq.ids.extend(ids[start:start + step])
        out.append(decode_steps(tokenizer, [seq], [start + step >= len(ids)], pieces)[0])
    assert "".join(out) == text


def test_fast_path_gives_the_window_paths_text_for_any_token_stream(tokenizer, pieces):
    rng = random.Random(7)
    vocab = len(tokenizer.get_vocab())
    for _ in range(40):  # random ids: partial characters, special tokens and plain words mixed
        ids = [rng.randrange(vocab) for _ in range(24)]
        fast, window = SequenceText(), SequenceText()
        out_fast = out_window = ""
        for k, token in enumerate(ids):
            fast.ids.append(token)
            window.ids.append(token)
            final = k == len(ids) - 1
            out_fast += decode_steps(tokenizer, [fast], [final], pieces)[0]
            out_window += decode_steps(tokenizer, [window], [final])[0]
        assert out_fast == out_window
