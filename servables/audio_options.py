"""The node options of the speech kinds (`speech2text`, `text2speech`) accepted in a config entry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config_file import ConfigError
from .options import option_values


@dataclass(frozen=True)
class SpeechToTextOptions:
    device: str = "CPU"
    plugin_config: dict[str, Any] = field(default_factory=dict)
    max_upload_bytes: int = 25 * 1024 * 1024  # OpenAI's limit for audio uploads
    max_audio_seconds: int = 3600  # longer uploads are a 400 (checked on the header, before decoding)
    max_new_tokens: int = 224  # per 30 s window (Whisper's context is 448 tokens, half of it for the prompt)
    word_timestamps: bool = False  # build the pipeline for `timestamp_granularities[]=word`
    max_queue_size: int = 32  # requests waiting behind the running one before 503

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> SpeechToTextOptions:
        result = cls(**option_values(cls, options, "speech2text"))
        for name in ("max_upload_bytes", "max_audio_seconds", "max_queue_size"):
            if getattr(result, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1")
        if result.max_new_tokens < 2:  # 1 with timestamps never returns (OpenVINO GenAI 2026.4)
            raise ConfigError("option 'max_new_tokens' must be at least 2")
        return result


@dataclass(frozen=True)
class TextToSpeechOptions:
    device: str = "CPU"
    plugin_config: dict[str, Any] = field(default_factory=dict)
    voices_dir: str = "voices"  # `<name>.bin` speaker embeddings (raw float32), relative to the model folder
    max_input_chars: int = 4096  # OpenAI's limit for `input`
    max_queue_size: int = 32

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> TextToSpeechOptions:
        result = cls(**option_values(cls, options, "text2speech"))
        for name in ("max_input_chars", "max_queue_size"):
            if getattr(result, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1")
        return result
