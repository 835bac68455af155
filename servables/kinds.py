"""The kind table: every servable kind declared once.

A kind is named by its task, as `config.json`, `--task` and OVMS spell it (`text_generation`,
`embeddings`, ...). Everything else reads this table: the registry builds servables from
`servable`, config validation calls `options`, the scheduler starts `engine`, the device arbiter
takes `priority`/`weight`/`threads`, `pull` converts with `optimum_task`, the CLI offers the names
as `--task` choices, task inference asks `detect` in `detect_order`, and the OpenAI/Cohere routers
check `endpoints`. Adding a kind = its module(s) + one `Kind(...)` below + its router
(docs/architecture.md has the checklist).

Targets are `"module:attribute"` strings, imported on first use, so that unused kinds cost nothing
and this module imports neither the scheduler nor OpenVINO.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


def load_target(target: str) -> Any:
    """Import `"package.module:Attr.sub"` and return the attribute."""
    module_name, _, attr = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def architectures(path: Path) -> list[str]:
    """`architectures` of a HuggingFace/optimum `config.json` in `path` (empty when absent)."""
    config = path / "config.json"
    if not config.is_file():
        return []
    try:
        return list(json.loads(config.read_text()).get("architectures") or [])
    except (OSError, ValueError):
        return []


# --- detection: does the folder/file at `path` hold a model of this kind? ---------------------

def _is_tensor(path: Path) -> bool:
    if path.is_file():
        from .model_formats import SUFFIXES

        return path.suffix in SUFFIXES
    return any(p.is_dir() and p.name.isdigit() for p in path.iterdir())


def _is_gguf(path: Path) -> bool:
    return path.suffix == ".gguf" if path.is_file() else any(path.glob("*.gguf"))


def _is_cross_encoder(path: Path) -> bool:
    return path.is_dir() and any(a.endswith("ForSequenceClassification") for a in architectures(path))


def _is_diffusers(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file()


def _is_sentence_transformer(path: Path) -> bool:
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "sentence_bert_config.json").is_file())


def _is_causal_lm(path: Path) -> bool:
    return path.is_dir() and any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
                                 for a in architectures(path))


def _is_vision_language(path: Path) -> bool:
    """An `optimum-cli export openvino --task image-text-to-text` folder (servables/vision.py)."""
    return path.is_dir() and (path / "openvino_vision_embeddings_model.xml").is_file()


def _is_speech_recognizer(path: Path) -> bool:
    return path.is_dir() and any(a.startswith("Whisper") or a.endswith("ForSpeechSeq2Seq") for a in architectures(path))


def _is_speech_synthesizer(path: Path) -> bool:
    return path.is_dir() and any(a.endswith("ForTextToSpeech") for a in architectures(path))


def _is_encoder(path: Path) -> bool:
    return path.is_dir() and any(a.endswith("Model") for a in architectures(path))


# The endpoint of kinds served over KServe v2 / TFS (tensors in, tensors out, with versions)
TENSOR_ENDPOINT = "infer"


@dataclass(frozen=True)
class Kind:
    name: str  # the task: config.json `task`, `--task`, pull settings
    label: str  # `kind` in /v3/models and the arbiter's metric labels (the wave-1 spelling)
    servable: str  # "module:Class" implementing servables.base.Servable, built from a ModelSpec
    engine: str  # "module:Class" in scheduler/, built from a loaded servable (scheduler.engine.Engine)
    endpoints: tuple[str, ...] = ()  # the OpenAI/Cohere endpoints its models answer
    options: str | None = None  # "module:callable(dict)" raising ValueError on a bad node option
    priority: int = 1  # device arbiter class (0 = interactive, goes first)
    weight: float = 1.0  # device arbiter share of device time within the class
    threads: Literal["all", "half", "background", "own"] = "own"  # arbiter thread plan (scheduler/arbiter.py)
    pullable: bool = True  # `genai-gateway pull --task` offers it
    optimum_task: str | None = None  # `optimum-cli export openvino --task` (None: optimum infers it)
    # task inference from the model files: (order, predicate) pairs; all kinds' pairs are asked
    # lowest order first (as OVMS infers a missing `task`: versions -> GGUF -> speech2text -> text2speech -> rerank
    # -> image -> embeddings -> LLM)
    detect: tuple[tuple[int, Callable[[Path], bool]], ...] = ()

    def load(self, attr: str) -> Any:
        return load_target(getattr(self, attr))


KINDS: tuple[Kind, ...] = (
    Kind("text_generation", "llm", "servables.llm:LLMServable", "scheduler.llm_engine:LLMEngine",
         endpoints=("chat/completions", "completions", "responses", "tokenize", "messages"),
         options="servables.llm_options:LLMOptions.from_dict", priority=0, weight=8.0, threads="all",
         optimum_task="text-generation-with-past",
         detect=((10, _is_gguf), (45, _is_vision_language), (50, _is_causal_lm))),
    # a folder with a vision encoder gets the multimodal (image + text) variant
    Kind("embeddings", "embeddings", "servables.multimodal_embeddings:embeddings_servable",
         "scheduler.batcher:BatchingEngine",
         endpoints=("embeddings", "rerank"), options="servables.embedding_options:validate_embeddings",
         weight=2.0, threads="background", optimum_task="feature-extraction",
         detect=((40, _is_sentence_transformer), (60, _is_encoder))),
    Kind("rerank", "rerank", "servables.rerank:RerankServable", "scheduler.batcher:BatchingEngine",
         endpoints=("rerank",), options="servables.embedding_options:validate_rerank", weight=2.0,
         threads="background", optimum_task="text-classification", detect=((20, _is_cross_encoder),)),
    Kind("image_generation", "image", "servables.image:ImageServable", "scheduler.image_engine:ImageEngine",
         endpoints=("images/generations", "images/edits"), options="servables.image_options:ImageOptions.from_dict",
         weight=1.0, threads="background", detect=((30, _is_diffusers),)),
    Kind("speech2text", "speech2text", "servables.asr:ASRServable", "scheduler.audio_engine:SpeechEngine",
         endpoints=("audio/transcriptions", "audio/translations"),
         options="servables.audio_options:SpeechToTextOptions.from_dict", weight=1.0, threads="background",
         optimum_task="automatic-speech-recognition-with-past", detect=((12, _is_speech_recognizer),)),
    Kind("text2speech", "text2speech", "servables.tts:TTSServable", "scheduler.audio_engine:SpeechEngine",
         endpoints=("audio/speech",), options="servables.audio_options:TextToSpeechOptions.from_dict", weight=1.0,
         threads="background", optimum_task="text-to-audio", detect=((14, _is_speech_synthesizer),)),
    Kind("tensor", "tensor", "servables.tensor_model:TensorModel", "scheduler.tensor_engine:TensorModelEngine",
         endpoints=(TENSOR_ENDPOINT,), weight=2.0, pullable=False, detect=((0, _is_tensor),)),
    # pipeline_config_list entries (OVMS docs/dag_scheduler.md): served like a tensor model; its nodes' models
    # run on their own engines and lanes
    Kind("pipeline", "pipeline", "servables.pipeline:PipelineServable", "scheduler.pipeline_engine:PipelineEngine",
         endpoints=(TENSOR_ENDPOINT,), options="servables.pipeline:validate_definition", pullable=False),
)

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def kind(name: str) -> Kind:
    """The kind named `name` (a task name); KeyError when there is none."""
    return BY_NAME[name]


def infer_task(path: Path) -> str | None:
    """The task of the model at `path`, or None when its files say nothing (as OVMS does when `task` is absent)."""
    if not (path.is_file() or path.is_dir()):
        return None
    rules = sorted(((order, predicate, k.name) for k in KINDS for order, predicate in k.detect),
                   key=lambda rule: rule[0])
    return next((name for _, predicate, name in rules if predicate(path)), None)


def create_servable(spec: Any) -> Any:
    """Build the servable of `spec.task` (not loaded yet)."""
    from .errors import ModelLoadError

    declared = BY_NAME.get(spec.task)
    if declared is None:
        raise ModelLoadError(f"{spec.name}: task {spec.task!r} is not supported by this server")
    return declared.load("servable")(spec)


def validate_options(task: str, options: dict[str, Any]) -> None:
    """Raise ValueError naming the field when a node option of `task` is invalid."""
    declared = BY_NAME.get(task)
    if declared is not None and declared.options is not None:
        declared.load("options")(options)
