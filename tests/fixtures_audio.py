"""Tiny random speech models for the audio tests, exported to OpenVINO IR and cached, and real speech input.

No speech weights exist offline, so the tests build them (docs: OpenVINO GenAI WhisperPipeline and
Text2SpeechPipeline; optimum-intel export):

- Whisper: the real Whisper token layout (256 byte tokens in GPT-2 order, `<|endoftext|>`, the start,
  language and task specials, then the 1501 timestamp tokens as the last ids), 80 mel bins, 1500
  source positions (30 s windows), d_model 64 and one encoder and one decoder layer. Random weights
  decode to nothing useful, so the embedding rows of ASCII letters and the space are scaled up and the
  decoder positions amplified: greedy decoding then writes letter "words" between timestamps.
- SpeechT5 + HiFi-GAN: a character sentencepiece tokenizer trained here, hidden size 64, one layer
  each, the stop head biased so generation always runs `maxlenratio` steps per token (a known
  length), and a vocoder initialised loudly enough to be audible as 16-bit PCM. Two named voices
  (raw float32 x-vectors, 512 values) are written into `voices/` beside the model.

Building needs the conversion extra (torch, transformers, optimum-intel) plus sentencepiece and
protobuf; it runs in a subprocess (`python -m tests.fixtures_audio whisper|speecht5 OUT`) so the test
process never imports torch.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from tests.model_cache import cached

ROOT = Path(__file__).resolve().parent.parent

WHISPER_PARAMS = {"d_model": 64, "layers": 1, "heads": 2, "langs": ["en", "de", "fr"], "seed": 0,
                  "text_scale": 4.0, "position_scale": 30.0, "version": 1}
SPEECHT5_PARAMS = {"hidden": 64, "layers": 1, "heads": 2, "stop_bias": -10.0, "maxlenratio": 2.0, "seed": 0,
                   "voices": ["alloy", "echo"], "version": 1}
VOICES = tuple(SPEECHT5_PARAMS["voices"])
SPEECH_TEXT = "hello world, this is a tiny speech test for the gateway"


def whisper_ir(params: dict | None = None) -> Path:
    """The exported tiny Whisper folder (or one built with `params`), built on first use."""
    params = params or WHISPER_PARAMS
    return cached("tiny-whisper", params, lambda out: _build_in_subprocess("whisper", out, params))


def whisper_hf() -> Path:
    """The tiny Whisper as a HuggingFace checkpoint (what `pull` downloads and converts), built on first use."""
    return cached("tiny-whisper-hf", WHISPER_PARAMS, lambda out: _build_in_subprocess("whisper-hf", out))


def speecht5_ir() -> Path:
    """The exported tiny SpeechT5 folder (with `voices/*.bin`), built on first use."""
    return cached("tiny-speecht5", SPEECHT5_PARAMS, lambda out: _build_in_subprocess("speecht5", out))


def speecht5_hf() -> Path:
    """The tiny SpeechT5 (`tts/`) and its vocoder (`vocoder/`) as HuggingFace checkpoints, built on first use."""
    return cached("tiny-speecht5-hf", SPEECHT5_PARAMS, lambda out: _build_in_subprocess("speecht5-hf", out))


def _build_in_subprocess(which: str, out: Path, params: dict | None = None) -> None:
    command = [sys.executable, "-m", "tests.fixtures_audio", which, str(out), json.dumps(params or {})]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building tiny {which} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


# --- speech input ----------------------------------------------------------------------------------

def speech_wav(path: Path, text: str = SPEECH_TEXT) -> Path:
    """A WAV of `text` spoken by espeak-ng (22050 Hz mono), or 3.5 s of a synthetic voiced signal without it."""
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        return path
    rate = 22050
    t = np.arange(int(rate * 3.5)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 3 * t)  # a wavering voice with a few harmonics, syllable envelope
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    write_wav(path, (0.3 * signal).astype(np.float32), rate)
    return path


def encode_with_av(samples: np.ndarray, rate: int, container: str, codec: str, codec_rate: int,
                   options: dict[str, str] | None = None) -> bytes:
    """Mono float32 `samples` encoded by PyAV's FFmpeg (e.g. `ipod`/`aac` for M4A, `webm`/`libopus`),
    resampled by the encoder to `codec_rate`. `options` are the muxer's (webm `live`: no duration)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container, options=options or {}) as target:
        stream = target.add_stream(codec, rate=codec_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            target.mux(packet)
    return out.getvalue()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit mono PCM WAV with the standard library's `wave` module."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


# --- building (runs in the subprocess) ------------------------------------------------------------

def _gpt2_byte_chars() -> list[str]:
    """GPT-2's byte-level alphabet: position i is the character standing for byte i's token id."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    order, chars, extra = list(printable), [chr(c) for c in printable], 0
    for byte in range(256):
        if byte not in printable:
            order.append(byte)
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def build_whisper(out: Path, params: dict | None = None) -> None:
    from optimum.exporters.openvino import main_export

    hf = out.parent / "hf-whisper"
    save_whisper_checkpoint(hf, params)
    main_export(model_name_or_path=str(hf), output=str(out), task="automatic-speech-recognition-with-past",
                convert_tokenizer=True)
    _require(out, "openvino_encoder_model.xml", "openvino_decoder_model.xml", "openvino_tokenizer.xml",
             "openvino_detokenizer.xml", "preprocessor_config.json")


def save_whisper_checkpoint(hf: Path, params: dict | None = None) -> None:
    import torch
    from tokenizers import AddedToken
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    p = params or WHISPER_PARAMS
    torch.manual_seed(p["seed"])
    byte_chars = _gpt2_byte_chars()
    langs = [f"<|{code}|>" for code in p["langs"]]
    tasks = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *langs, *tasks]
    tokenizer = WhisperTokenizer(vocab={ch: i for i, ch in enumerate(byte_chars)}, merges=[],
                                 extra_special_tokens=specials[1:])
    # GenAI treats every id above <|notimestamps|> as a timestamp: they must be ordinary tokens, last
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", normalized=False, special=False) for i in range(1501)])
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in specials}
    eot, sot, space = ids["<|endoftext|>"], ids["<|startoftranscript|>"], 220
    assert eot == 256 and tokenizer.convert_tokens_to_ids("<|30.00|>") == len(tokenizer) - 1

    d = p["d_model"]
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=d, encoder_layers=p["layers"], decoder_layers=p["layers"],
        encoder_attention_heads=p["heads"], decoder_attention_heads=p["heads"], encoder_ffn_dim=2 * d,
        decoder_ffn_dim=2 * d, max_source_positions=1500, max_target_positions=448, pad_token_id=eot,
        bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot, begin_suppress_tokens=[space, eot],
        suppress_tokens=[])
    model = WhisperForConditionalGeneration(config).eval()
    letters = [i for i, ch in enumerate(byte_chars) if ch.isascii() and ch.isalpha()]
    scale = torch.full((256,), 0.05)
    scale[letters] = p["text_scale"]
    scale[space] = p["text_scale"] * 1.5
    with torch.no_grad():
        model.get_input_embeddings().weight[:256] *= scale[:, None]
        model.model.decoder.embed_positions.weight *= p["position_scale"]
    generation = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, max_length=448,
        begin_suppress_tokens=[space, eot], suppress_tokens=list(range(sot, ids["<|notimestamps|>"] + 1)),
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50, is_multilingual=True, lang_to_id={lang: ids[lang] for lang in langs},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        alignment_heads=[[layer, head] for layer in range(p["layers"]) for head in range(p["heads"])],
        return_timestamps=False)
    model.generation_config = generation
    model.save_pretrained(hf)
    generation.save_pretrained(hf)
    features = WhisperFeatureExtractor(feature_size=80)  # 16 kHz, 30 s windows, hop 160
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(hf)


def _train_char_tokenizer(folder: Path) -> Path:
    import string

    import sentencepiece

    text = [string.ascii_letters + string.digits + string.punctuation, SPEECH_TEXT,
            "The quick brown fox jumps over the lazy dog."] * 40
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(text))
    prefix = folder / "spm_char"
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(prefix), model_type="char", vocab_size=len(set("".join(text) + " ")) + 4,
        character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2)  # SpeechT5's special ids
    return prefix.with_suffix(".model")


def save_speecht5_checkpoints(tts_dir: Path, vocoder_dir: Path, work: Path, params: dict | None = None) -> None:
    """The tiny SpeechT5 and its HiFi-GAN vocoder as two HuggingFace checkpoints (what optimum exports);
    the tokenizer is trained in `work`."""
    import torch
    from transformers import (
        SpeechT5Config,
        SpeechT5FeatureExtractor,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Processor,
        SpeechT5Tokenizer,
    )

    p = params or SPEECHT5_PARAMS
    torch.manual_seed(p["seed"])
    tokenizer = SpeechT5Tokenizer(vocab_file=str(_train_char_tokenizer(work)))
    h = p["hidden"]
    config = SpeechT5Config(
        vocab_size=len(tokenizer), hidden_size=h, encoder_layers=p["layers"], decoder_layers=p["layers"],
        encoder_attention_heads=p["heads"], decoder_attention_heads=p["heads"], encoder_ffn_dim=2 * h,
        decoder_ffn_dim=2 * h, num_mel_bins=80, reduction_factor=2, speaker_embedding_dim=512,
        speech_decoder_prenet_units=h, speech_decoder_postnet_units=h, speech_decoder_postnet_layers=2,
        conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2)  # GenAI fixes reduction_factor 2 and 512-value speaker embeddings
    model = SpeechT5ForTextToSpeech(config).eval()
    with torch.no_grad():
        model.speech_decoder_postnet.prob_out.bias.fill_(p["stop_bias"])
    model.save_pretrained(tts_dir)
    SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tokenizer).save_pretrained(tts_dir)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=80, sampling_rate=16000, upsample_initial_channel=32, upsample_rates=[4, 4, 4, 4],
        upsample_kernel_sizes=[8, 8, 8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        initializer_range=0.2))
    vocoder.eval().save_pretrained(vocoder_dir)


def save_speecht5_hf(out: Path, params: dict | None = None) -> None:
    save_speecht5_checkpoints(out / "tts", out / "vocoder", out.parent, params)


def build_speecht5(out: Path, params: dict | None = None) -> None:
    from optimum.exporters.openvino import main_export

    p = params or SPEECHT5_PARAMS
    tts_dir, vocoder_dir = out.parent / "hf-tts", out.parent / "hf-vocoder"
    save_speecht5_checkpoints(tts_dir, vocoder_dir, out.parent, p)
    main_export(model_name_or_path=str(tts_dir), output=str(out), task="text-to-audio", convert_tokenizer=True,
                model_kwargs={"vocoder": str(vocoder_dir)})
    _require(out, "openvino_encoder_model.xml", "openvino_decoder_model.xml", "openvino_postnet.xml",
             "openvino_vocoder.xml", "openvino_tokenizer.xml")
    # the pipeline reads maxlenratio from the IR's generation_config.json (the export rewrites that file)
    generation_path = out / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.is_file() else {}
    generation["maxlenratio"] = p["maxlenratio"]
    generation_path.write_text(json.dumps(generation, indent=2))
    voices = out / "voices"
    voices.mkdir()
    rng = np.random.default_rng(p["seed"])
    for name in p["voices"]:
        rng.standard_normal(512).astype("<f4").tofile(voices / f"{name}.bin")


def _require(folder: Path, *names: str) -> None:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:  # e.g. no tokenizer when protobuf is missing: optimum skips it silently
        raise RuntimeError(f"export into {folder} wrote no {', '.join(missing)}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    builder = {"whisper": build_whisper, "whisper-hf": save_whisper_checkpoint, "speecht5": build_speecht5,
               "speecht5-hf": save_speecht5_hf}[sys.argv[1]]
    builder(Path(sys.argv[2]), json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
