"""`genai-gateway pull`: download a HuggingFace repo into a model repository, converting it to
OpenVINO IR with optimum-intel when it is not IR or GGUF already.

The model lands in `<repository>/<org>/<name>` only when it is complete: files are downloaded (and
converted) under `<repository>/.pulling/<org>--<name>/` and renamed into place at the end, so an
interrupted pull never looks like a finished model; the next run resumes the partial download.
`huggingface_hub` honours `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE`.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_dir
from .errors import PullError
from .kinds import BY_NAME, infer_task

log = logging.getLogger(__name__)

WORK_DIR = ".pulling"
WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")
DEFAULT_WEIGHT_FORMAT = "int8"  # as OVMS for optimum-cli conversions
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass
class PullRequest:
    source_model: str
    repository: Path
    task: str | None = None
    weight_format: str | None = None
    gguf_filename: str | None = None
    overwrite: bool = False
    revision: str | None = None
    extra_quantization_params: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # task node options written to the settings


def target_dir(repository: Path, source_model: str) -> Path:
    if not _REPO_ID.match(source_model) or ".." in source_model:
        raise PullError(f"--source_model must be a HuggingFace id like org/name, got {source_model!r}")
    return Path(repository) / source_model


def is_pulled(folder: Path) -> bool:
    return (Path(folder) / model_dir.SETTINGS_FILE).is_file()


def pull(req: PullRequest) -> Path:
    """Download (and convert) `req.source_model`; returns the finished model folder."""
    target = target_dir(req.repository, req.source_model)
    if is_pulled(target) and not req.overwrite:
        settings = model_dir.read_settings(target)
        if req.options or req.task:  # as OVMS rewrites graph.pbtxt but keeps the weights
            settings["options"] = {**settings.get("options", {}), **req.options}
            settings["task"] = req.task or settings.get("task")
            model_dir.write_settings(target, settings)
        log.info("%s is already in %s (pass --overwrite_models to download it again)", req.source_model, target)
        return target
    if target.exists() and not req.overwrite:
        raise PullError(f"{target} exists but is not a model pulled by genai-gateway; "
                        f"pass --overwrite_models to replace it")
    work = Path(req.repository) / WORK_DIR / req.source_model.replace("/", "--")
    try:
        return _pull(req, target, work)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PullError(f"disk full while pulling {req.source_model} into {req.repository}: free some space "
                            f"and run the pull again (the download resumes)") from exc
        raise PullError(f"cannot write the model into {req.repository}: {exc}") from exc


def _pull(req: PullRequest, target: Path, work: Path) -> Path:
    download = work / "download"
    download.mkdir(parents=True, exist_ok=True)
    if req.gguf_filename:
        _download_file(req, download)
        task = req.task or "text_generation"
        if task != "text_generation":
            raise PullError("--gguf_filename is for text_generation models only")
        result, kind = download, "gguf"
    else:
        _download_repo(req, download)
        ggufs = sorted(p.name for p in download.glob("*.gguf"))
        if _is_openvino_ir(download):
            task = req.task or infer_task(download)
            result, kind = download, "openvino"
        elif ggufs:
            if len(ggufs) > 1:
                raise PullError(f"{req.source_model} has several .gguf files ({', '.join(ggufs)}): "
                                f"choose one with --gguf_filename")
            req.gguf_filename = ggufs[0]
            task = req.task or "text_generation"
            result, kind = download, "gguf"
        else:
            task = req.task or infer_task(download)
            if task is None:
                raise PullError(f"cannot infer the task of {req.source_model} from its config.json; pass --task")
            result, kind = _convert(req, download, work / "converted", task), "converted"
    if task is None:
        raise PullError(f"cannot infer the task of {req.source_model}; pass --task")
    if kind == "gguf":
        for extra in download.iterdir():  # keep only the model file
            if extra.name not in (req.gguf_filename,):
                _remove(extra)
    else:
        _remove(result / ".cache")
    settings = {"source_model": req.source_model, "task": task, "source_format": kind, "options": dict(req.options)}
    if req.gguf_filename:
        settings["gguf_filename"] = req.gguf_filename
    if kind == "converted":
        settings["weight_format"] = req.weight_format or DEFAULT_WEIGHT_FORMAT
    model_dir.write_settings(result, settings)
    if target.exists():
        _remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(result, target)
    _remove(work)
    try:
        (Path(req.repository) / WORK_DIR).rmdir()
    except OSError:
        pass
    log.info("pulled %s into %s (%s, task %s)", req.source_model, target, kind, task)
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _is_openvino_ir(folder: Path) -> bool:
    """openvino_model.xml, or the parts of a multi-model export (openvino_encoder_model.xml ... for
    Whisper and SpeechT5), in the folder or one level down (diffusers)."""
    return any(folder.glob("openvino_*model.xml")) or any(folder.glob("*/openvino_*model.xml"))


# --- download --------------------------------------------------------------------------------

class _LogProgress:
    """A tqdm class that writes plain log lines (for logs and pipes, where a bar would be noise)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        from tqdm import tqdm

        class LogTqdm(tqdm):
            def __init__(self, *a: Any, **kw: Any) -> None:
                kw.pop("name", None)
                kw.update(file=io.StringIO(), mininterval=5.0, disable=False)
                super().__init__(*a, **kw)

            def display(self, msg: str | None = None, pos: int | None = None) -> bool:
                if self.total:
                    log.info("%s", self.format_meter(**self.format_dict))
                return True

        return LogTqdm


def _progress_class() -> Any:
    """None (huggingface_hub's own bar) on a terminal; plain log lines otherwise."""
    return None if sys.stderr.isatty() else _LogProgress()


def _hub_errors(req: PullRequest):
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    return [  # most specific first: LocalEntryNotFoundError is an EntryNotFoundError
        (OfflineModeIsEnabled, lambda e: f"cannot download {req.source_model}: HF_HUB_OFFLINE is set"),
        (LocalEntryNotFoundError, lambda e: f"cannot download {req.source_model}: {endpoint} is not reachable "
                                            f"(no network?) and no partial copy exists"
                                            + (" (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "")),
        (GatedRepoError, lambda e: f"{req.source_model} is gated on {endpoint}: accept its terms and set HF_TOKEN"),
        (RepositoryNotFoundError, lambda e: f"model {req.source_model} was not found on {endpoint} (404): check "
                                            f"the name, or set HF_TOKEN for a private repo"),
        (RevisionNotFoundError, lambda e: f"revision {req.revision} of {req.source_model} was not found on {endpoint}"),
        (EntryNotFoundError, lambda e: f"file {req.gguf_filename or ''} was not found in {req.source_model} on "
                                       f"{endpoint} (404)"),
        (HfHubHTTPError, lambda e: f"cannot download {req.source_model} from {endpoint}: {str(e).splitlines()[0]}"),
    ]


def _call_hub(req: PullRequest, func, **kwargs: Any) -> Any:
    import httpx

    try:
        return func(**kwargs)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        for cls, message in _hub_errors(req):
            if isinstance(exc, cls):
                raise PullError(message(exc)) from exc
        raise PullError(f"cannot download {req.source_model}: {exc}") from exc
    except httpx.HTTPError as exc:
        from huggingface_hub import constants

        raise PullError(f"cannot download {req.source_model}: {constants.ENDPOINT} is not reachable "
                        f"(no network?): {exc}") from exc
    except Exception as exc:
        for cls, message in _hub_errors(req):
            if isinstance(exc, cls):
                raise PullError(message(exc)) from exc
        raise


def _download_repo(req: PullRequest, dest: Path) -> None:
    from huggingface_hub import HfApi, snapshot_download

    # Ask the hub first: snapshot_download falls back to a non-empty local_dir when the hub is
    # unreachable, which would pass a partial earlier download off as complete.
    info = _call_hub(req, HfApi().model_info, repo_id=req.source_model, revision=req.revision)
    log.info("downloading %s into %s", req.source_model, dest)
    _call_hub(req, snapshot_download, repo_id=req.source_model, revision=info.sha or req.revision,
              local_dir=str(dest), tqdm_class=_progress_class(), max_workers=4, force_download=req.overwrite)
    missing = [s.rfilename for s in info.siblings or [] if not (dest / s.rfilename).is_file()]
    if missing:
        raise PullError(f"the download of {req.source_model} is incomplete ({len(missing)} files missing, e.g. "
                        f"{missing[0]}): run the pull again to resume it")


def _download_file(req: PullRequest, dest: Path) -> None:
    from huggingface_hub import hf_hub_download

    log.info("downloading %s from %s into %s", req.gguf_filename, req.source_model, dest)
    _call_hub(req, hf_hub_download, repo_id=req.source_model, filename=req.gguf_filename, revision=req.revision,
              local_dir=str(dest), tqdm_class=_progress_class(), force_download=req.overwrite)


# --- conversion --------------------------------------------------------------------------------

def _optimum_cli() -> list[str]:
    script = Path(sys.executable).parent / "optimum-cli"
    if script.exists():
        return [str(script)]
    found = shutil.which("optimum-cli")
    if found:
        return [found]
    raise PullError("this model is not in OpenVINO format and needs conversion, but optimum-cli is not "
                    "installed: pip install 'genai-gateway[convert]' (torch==2.13.0 first)")


_UNSUPPORTED = re.compile(r"(unsupported architecture|is not supported|not supported yet|custom or unsupported|"
                          r"Unrecognized configuration class|does not recognize this architecture)", re.I)


def _require_vocoder(req: PullRequest, source: Path, task: str) -> None:
    """SpeechT5 makes spectrograms; optimum-intel exports it for Text2SpeechPipeline only together with a
    vocoder named in `--model-kwargs` (OVMS's and optimum-cli's spelling): say so before converting."""
    if task != "text2speech" or "vocoder" in (req.extra_quantization_params or ""):
        return
    try:
        model_type = json.loads((source / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return
    if model_type == "speecht5":
        raise PullError(f"{req.source_model} is a SpeechT5 model: converting it needs a vocoder, e.g. "
                        "--extra_quantization_params '--model-kwargs {\"vocoder\":\"microsoft/speecht5_hifigan\"}'")


def _convert(req: PullRequest, source: Path, out: Path, task: str) -> Path:
    weight_format = req.weight_format or DEFAULT_WEIGHT_FORMAT
    if weight_format not in WEIGHT_FORMATS:
        raise PullError(f"--weight-format must be one of {', '.join(WEIGHT_FORMATS)}")
    if out.exists():
        _remove(out)
    _require_vocoder(req, source, task)
    command = [*_optimum_cli(), "export", "openvino", "--model", str(source), "--weight-format", weight_format]
    optimum_task = BY_NAME[task].optimum_task if task in BY_NAME else None
    if optimum_task:
        command += ["--task", optimum_task]
    if req.extra_quantization_params:
        command += req.extra_quantization_params.split()
    command.append(str(out))
    log.info("converting %s to OpenVINO IR (%s, %s): %s", req.source_model, task, weight_format, " ".join(command))
    log_file = out.parent / "convert.log"
    with open(log_file, "w") as sink:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if line.strip():
                log.debug("optimum-cli: %s", line.rstrip())
        code = process.wait()
    output = log_file.read_text()
    if code != 0 or not _is_openvino_ir(out):
        if "No space left on device" in output:
            raise OSError(errno.ENOSPC, "No space left on device")
        unsupported = _UNSUPPORTED.search(output)
        lines = [line for line in output.splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
        if unsupported:
            line = next(line for line in lines if _UNSUPPORTED.search(line))
            raise PullError(f"{req.source_model}: unsupported architecture for OpenVINO conversion: {line.strip()}")
        raise PullError(f"converting {req.source_model} with optimum-cli failed (exit {code}): {last.strip()} "
                        f"(full log: {log_file})")
    log_file.unlink()
    return out
