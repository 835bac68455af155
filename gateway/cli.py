"""`genai-gateway serve`: OVMS-compatible flags where sensible."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from scheduler.arbiter import POLICIES
from servables import kinds, shape_caches

log = logging.getLogger("genai_gateway")

LLM_KNOBS = ("cache_size", "max_num_batched_tokens", "max_num_seqs", "enable_prefix_caching",
             "dynamic_split_fuse", "max_tokens_limit", "max_queue_size", "tool_parser", "reasoning_parser",
             "admission_window_ms", "prompt_lookup", "draft_model", "draft_source_model", "kv_cache_precision",
             "inference_precision")


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve models over HTTP")
    serve.add_argument("--rest_port", type=int, default=8000)
    serve.add_argument("--rest_bind_address", default="127.0.0.1")
    serve.add_argument("--model_path", help="an OpenVINO IR folder or a .gguf file")
    serve.add_argument("--model_name", help="the name clients use in `model`")
    serve.add_argument("--task", choices=kinds.NAMES)
    serve.add_argument("--config_path", help="OVMS-style config.json with model_config_list")
    serve.add_argument("--target_device", default=None)
    serve.add_argument("--plugin_config", type=_json_object, default=None, help="OpenVINO properties (JSON)")
    knobs = serve.add_argument_group("text generation scheduler")
    serve.add_argument("--cpu_shape_caches", choices=["on", "off"], default="on",
                       help="off: no per-shape executor/primitive caches on the CPU; flat memory under continuous "
                            "batching, slower steps (README 'Memory over time')")
    knobs.add_argument("--cache_size", type=int, help="KV cache in GB; 0 grows dynamically (default 0)")
    knobs.add_argument("--max_num_batched_tokens", type=int, help="tokens per step (default 256)")
    knobs.add_argument("--max_num_seqs", type=int, help="sequences generated at once (default 256)")
    knobs.add_argument("--enable_prefix_caching", type=_bool, help="reuse KV blocks of shared prefixes (default true)")
    knobs.add_argument("--dynamic_split_fuse", type=_bool, help="chunked prefill (default true)")
    knobs.add_argument("--max_tokens_limit", type=int, help="upper bound for max_tokens, and its default")
    knobs.add_argument("--max_queue_size", type=int, help="requests waiting for a slot before 503 (default 512)")
    knobs.add_argument("--admission_window_ms", type=int,
                       help="admit requests arriving this close together in one prefill; 0 = off (default 5)")
    knobs.add_argument("--kv_cache_precision", choices=["f32", "f16", "bf16", "u8", "u4"],
                       help="KV cache element type (default: the plugin's choice)")
    knobs.add_argument("--inference_precision", choices=["f32", "bf16", "f16", "plugin"],
                       help="INFERENCE_PRECISION_HINT of the model (default f32; plugin = OpenVINO's choice)")
    knobs.add_argument("--prompt_lookup", type=_bool, help="speculative decoding with prompt n-grams (default false)")
    knobs.add_argument("--draft_model", help="folder of a draft model for speculative decoding")
    knobs.add_argument("--draft_source_model",
                       help="HuggingFace id of a draft model, pulled into --model_repository_path with --source_model")
    knobs.add_argument("--lora_adapter", action="append", metavar="NAME=PATH[:ALPHA]",
                       help="a LoRA adapter of the model, served as <model_name>:NAME (repeatable)")
    knobs.add_argument("--tool_parser",
                       help="hermes, llama3, mistral, generic or none (default: from the chat template)")
    knobs.add_argument("--reasoning_parser",
                       help="qwen3 (<think>...</think>) or none (default: from the chat template)")
    tensor = serve.add_argument_group("classic tensor models (KServe v2 / TFS)")
    tensor.add_argument("--port", type=int, default=0, help="gRPC port for KServe v2 and TFS (0 = no gRPC)")
    tensor.add_argument("--grpc_bind_address", default=None, help="default: --rest_bind_address")
    tensor.add_argument("--nireq", type=int, help="inference requests per model version (default: optimal)")
    tensor.add_argument("--batch_size", help="batch dimension: an integer or auto")
    tensor.add_argument("--shape", help='input shape, e.g. "(1,3,224,224)", auto, or a JSON object per input')
    tensor.add_argument("--model_version_policy", type=_json_object, help='e.g. {"latest": {"num_versions": 2}}')
    media = serve.add_argument_group("image input of vision-language models (gateway/media.py)")
    media.add_argument("--allowed_media_domains", default="",
                       help="hosts whose http(s) image URLs may be fetched, comma-separated (default: none)")
    media.add_argument("--allowed_local_media_path", default=None,
                       help="folder whose files may be sent as image URLs (file:// or a path; default: none)")
    media.add_argument("--max_images_per_request", type=int, default=8, help="image parts per request (default 8)")
    media.add_argument("--max_image_bytes", type=int, default=20 * 2**20,
                       help="largest encoded image, in bytes (default 20 MiB)")
    media.add_argument("--max_image_pixels", type=int, default=4096 * 4096,
                       help="largest image, width x height (default 4096x4096)")
    media.add_argument("--media_fetch_timeout_seconds", type=float, default=10.0,
                       help="timeout of one remote image or video fetch (default 10)")
    media.add_argument("--max_videos_per_request", type=int, default=2, help="video parts per request (default 2)")
    media.add_argument("--max_video_bytes", type=int, default=50 * 2**20,
                       help="largest encoded video, in bytes (default 50 MiB)")
    media.add_argument("--video_fps", type=float, default=2.0,
                       help="frames taken per second of video (default 2; fewer when --max_video_frames binds)")
    media.add_argument("--max_video_frames", type=int, default=16,
                       help="most frames taken from one video, spread over its whole length (default 16)")
    device = serve.add_argument_group("device arbiter (scheduler/arbiter.py)")
    device.add_argument("--arbiter", choices=POLICIES, default="fair",
                        help="how engines share the cores: off = all at once, fifo = one unit at a time in "
                             "arrival order, fair = token streams first with weighted shares (default)")
    device.add_argument("--arbiter_starvation_ms", type=float, default=250.0,
                        help="fair: a unit that waited this long goes next whatever its class")
    device.add_argument("--arbiter_overlap_ms", type=float, default=25.0,
                        help="fair: a token step starts next to a background unit that has run this long")
    device.add_argument("--arbiter_background_nice", type=int, default=10, choices=range(20), metavar="0..19",
                        help="OS priority (nice) of the threads running embedding, rerank, image and speech units "
                             "(fair, fifo), so that token steps get the cores first; 0 = unchanged (default 10)")
    ops = serve.add_argument_group("operations and security")
    ops.add_argument("--metrics_enable", action="store_true", help="serve Prometheus metrics on /metrics")
    ops.add_argument("--ui", choices=["on", "off"], default="on", help="the web playground at / and /ui")
    ops.add_argument("--metrics_list", default=None, help="comma-separated metric families (default: all)")
    ops.add_argument("--vllm_metrics", type=_bool, default=True,
                     help="with --metrics_enable, also export vLLM's metric names (vllm:*) for routers such as "
                          "the Gateway API Inference Extension (default true)")
    ops.add_argument("--api_key_file", help="file whose first line is the API key (else env API_KEY)")
    ops.add_argument("--allowed_origins", default="*", help="CORS origins, comma-separated")
    ops.add_argument("--allowed_methods", default="*", help="CORS methods, comma-separated")
    ops.add_argument("--allowed_headers", default="*", help="CORS headers, comma-separated")
    ops.add_argument("--allow_credentials", action="store_true", help="CORS: allow credentials")
    ops.add_argument("--strict_readiness", type=_bool, default=True,
                     help="/v2/health/ready is 503 while a configured model failed to load (KServe v2); "
                          "false: ready once the initial load finished, as OVMS (default true)")
    ops.add_argument("--max_request_bytes", type=int, default=64 * 2**20, help="largest accepted request body")
    ops.add_argument("--max_json_depth", type=int, default=100, help="deepest accepted JSON nesting")
    ops.add_argument("--shutdown_grace_seconds", type=float, default=30.0,
                     help="on SIGTERM, how long in-flight requests may take to finish")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                       help="how often the config file and tensor model version folders are checked for "
                            "changes; 0 = never (default 1)")
    add_model_management_flags(serve)
    residency = serve.add_argument_group("on-demand models (README: On-demand models)")
    residency.add_argument("--models_autoload", action="store_true",
                           help='a request for a configured model that is not loaded (a "load": "on_demand" entry, '
                                "or one unloaded with POST /v3/models/{id}/unload) loads it (default off)")
    residency.add_argument("--models_autoload_timeout_seconds", type=float, default=60.0,
                           help="how long such a request waits for the load before a 503 with Retry-After "
                                "(default 60)")
    residency.add_argument("--idle_unload_timeout_seconds", "--idle_unload_seconds", type=float, default=None,
                           dest="idle_unload_timeout_seconds",
                           help="unload a model unused for this long; it loads again on its next request "
                                "(default: the config file's idle_unload_timeout_seconds, else 0 = never)")
    ops.add_argument("--log_level", default="INFO", choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"])
    pull = sub.add_parser("pull", help="download a HuggingFace model (converting it to OpenVINO IR if needed)")
    add_pull_flags(pull)
    pull.add_argument("--draft_source_model", help="also pull this draft model (text_generation) into the repository")
    pull.add_argument("--log_level", default="INFO", choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def add_pull_flags(parser: argparse.ArgumentParser, serving: bool = False) -> None:
    group = parser.add_argument_group("pulling from HuggingFace (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE apply)")
    group.add_argument("--source_model", required=not serving, help="HuggingFace id, e.g. OpenVINO/Qwen3-8B-int4-ov")
    group.add_argument("--model_repository_path", default=os.environ.get("OVMS_MODEL_REPOSITORY_PATH"),
                       required=not serving and "OVMS_MODEL_REPOSITORY_PATH" not in os.environ,
                       help="folder the models are pulled into, as <dir>/<org>/<name> "
                            "(default $OVMS_MODEL_REPOSITORY_PATH)")
    if not serving:
        group.add_argument("--task", choices=[k.name for k in kinds.KINDS if k.pullable])
    group.add_argument("--weight-format", "--weight_format", dest="weight_format",
                       choices=["fp32", "fp16", "int8", "int4"], help="for conversions (default int8)")
    group.add_argument("--extra_quantization_params", help="passed to optimum-cli export openvino")
    group.add_argument("--gguf_filename", help="pull only this .gguf file of the repo (text_generation)")
    group.add_argument("--overwrite_models", action="store_true", help="download again even if present")
    group.add_argument("--revision", help="branch, tag or commit of the repo (default main)")


def add_model_management_flags(parser: argparse.ArgumentParser) -> None:
    add_pull_flags(parser, serving=True)
    group = parser.add_argument_group("model repository management (these do not serve)")
    group.add_argument("--pull", action="store_true", help="with --source_model: download, then exit")
    group.add_argument("--list_models", action="store_true", help="list the models in --model_repository_path")
    group.add_argument("--add_to_config", action="store_true",
                       help="add --model_name (from --model_path or --model_repository_path) to --config_path")
    group.add_argument("--remove_from_config", action="store_true", help="remove --model_name from --config_path")


def llm_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in LLM_KNOBS if getattr(args, k) is not None}
    if args.target_device:
        options["device"] = args.target_device
    if args.plugin_config is not None:
        options["plugin_config"] = args.plugin_config
    if getattr(args, "lora_adapter", None):
        from servables.lora import parse_cli

        options["lora_adapters"] = parse_cli(args.lora_adapter)
    return options


def tensor_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """`--model_path` options of a classic tensor model (config files carry them per entry)."""
    options: dict[str, Any] = {}
    for key in ("nireq", "batch_size", "model_version_policy", "target_device", "plugin_config"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    if args.shape is not None:
        options["shape"] = json.loads(args.shape) if args.shape.lstrip().startswith("{") else args.shape
    batch_size = options.get("batch_size")
    if isinstance(batch_size, str) and batch_size.isascii() and batch_size.isdigit():
        options["batch_size"] = int(batch_size)
    return options


def with_cli_defaults(spec, llm_defaults: dict[str, Any]):
    """CLI scheduler knobs are defaults for every text_generation entry of a config file."""
    if spec.task != "text_generation" or not llm_defaults:
        return spec
    return replace(spec, options={**llm_defaults, **spec.options})


def model_specs(args: argparse.Namespace):
    """The models to serve: config file, one model from flags, or the built-in defaults."""
    from servables import sources
    from servables.config_file import load_config_file
    from servables.errors import ServingError

    llm_defaults = llm_options_from_args(args)
    if args.config_path:
        if args.model_path:
            raise SystemExit("--config_path and --model_path cannot be used together")
        return [with_cli_defaults(s, llm_defaults) for s in load_config_file(Path(args.config_path))]
    if args.model_path:
        if not args.model_name:
            raise SystemExit("--model_path needs --model_name")
        spec = sources.local_spec(args.model_name, args.model_path, args.task)
        if spec.task == "text_generation":
            options = {**spec.options, **llm_defaults}
        elif spec.task == "tensor":
            options = {**spec.options, **tensor_options_from_args(args)}
        else:
            options = spec.options
        return [replace(spec, options=options)]
    specs = [sources.default_llm_spec(llm_defaults)]
    try:
        specs.append(sources.default_embeddings_spec())
    except ServingError as exc:
        log.warning("not serving the default embedding model %s: %s", sources.DEFAULT_EMBEDDINGS_NAME, exc)
    return specs


def read_api_key(args: argparse.Namespace) -> str | None:
    """First line of --api_key_file, else env API_KEY, else None (no authentication)."""
    if args.api_key_file:
        try:
            key = Path(args.api_key_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SystemExit(f"cannot read an API key from --api_key_file {args.api_key_file}: {exc}") from exc
        if not key:
            raise SystemExit(f"--api_key_file {args.api_key_file} has an empty first line")
        return key
    return os.environ.get("API_KEY") or None


def http_settings(args: argparse.Namespace):
    from gateway.app import HttpSettings
    from gateway.media import MediaPolicy
    from gateway.metrics import MetricsConfigError, select_families
    from servables.video_io import FramePolicy

    split = lambda text: [item.strip() for item in text.split(",") if item.strip()]  # noqa: E731
    try:
        families = select_families(args.metrics_enable, split(args.metrics_list) if args.metrics_list else None)
    except MetricsConfigError as exc:
        raise SystemExit(str(exc)) from exc
    if args.video_fps <= 0 or args.max_video_frames < 1:
        raise SystemExit("--video_fps must be positive and --max_video_frames at least 1")
    media_root = args.allowed_local_media_path
    if media_root and not Path(media_root).is_dir():
        raise SystemExit(f"--allowed_local_media_path {media_root} is not a folder")
    return HttpSettings(
        metric_families=families, api_key=read_api_key(args), allowed_origins=split(args.allowed_origins),
        allowed_methods=split(args.allowed_methods), allowed_headers=split(args.allowed_headers),
        allow_credentials=args.allow_credentials, max_body_bytes=args.max_request_bytes,
        max_json_depth=args.max_json_depth, ui=args.ui == "on", vllm_metrics=args.vllm_metrics,
        media=MediaPolicy(
            allowed_domains=frozenset(host.lower() for host in split(args.allowed_media_domains)),
            allowed_local_path=Path(args.allowed_local_media_path) if args.allowed_local_media_path else None,
            max_images=args.max_images_per_request, max_image_bytes=args.max_image_bytes,
            max_image_pixels=args.max_image_pixels, fetch_timeout=args.media_fetch_timeout_seconds,
            max_videos=args.max_videos_per_request, max_video_bytes=args.max_video_bytes,
            frames=FramePolicy(fps=args.video_fps, max_frames=args.max_video_frames,
                               max_pixels=args.max_image_pixels)),
    )


def idle_unload_seconds(args: argparse.Namespace) -> float:
    """--idle_unload_timeout_seconds, else the config file's top-level `idle_unload_timeout_seconds`
    (OVMS docs/idle_servable_management.md), else 0 (never)."""
    if args.idle_unload_timeout_seconds is not None:
        return max(0.0, args.idle_unload_timeout_seconds)
    if args.config_path:
        try:
            document = json.loads(Path(args.config_path).read_text())
        except (OSError, ValueError):
            return 0.0  # the config loader reports what is wrong with the file
        value = document.get("idle_unload_timeout_seconds", 0) if isinstance(document, dict) else 0
        return float(value) if isinstance(value, (int, float)) and value > 0 else 0.0
    return 0.0


def serve(args: argparse.Namespace) -> int:
    """Start HTTP at once (live), load the models in a worker thread (ready when done).

    SIGTERM: readiness goes false, the listener closes, in-flight requests get
    --shutdown_grace_seconds to finish, then the models are unloaded and the process exits 0.
    """
    import asyncio

    import uvicorn

    from gateway.app import create_app
    from scheduler.config_reloader import ConfigReloader
    from scheduler.model_manager import ModelManager
    from servables.config_file import ConfigError
    from servables.errors import ServingError

    from . import model_repo

    if args.list_models or args.add_to_config or args.remove_from_config or args.pull:
        return model_repo.run(args)
    settings = http_settings(args)
    from scheduler import arbiter

    arbiter.configure(args.arbiter, args.arbiter_starvation_ms, args.arbiter_overlap_ms,
                      args.arbiter_background_nice)
    cores = os.cpu_count() or 1
    shared_cores = lambda spec: arbiter.thread_defaults(spec, args.arbiter, cores)  # noqa: E731
    manager = ModelManager()
    reloader = None
    try:
        if args.source_model:  # pull (when missing) before listening: serving starts with the model on disk
            args.model_path, args.model_name = model_repo.pull_for_serving(args)
        if args.config_path:  # the only mode with runtime changes; bad entries are skipped, not fatal
            if args.model_path:
                raise SystemExit("--config_path and --model_path cannot be used together")
            defaults = llm_options_from_args(args)
            reloader = ConfigReloader(manager, Path(args.config_path),
                                      lambda s: shared_cores(with_cli_defaults(s, defaults)))
            load = reloader.load_initial
        else:
            specs = [shared_cores(spec) for spec in model_specs(args)]
            load = lambda: manager.load(specs)  # noqa: E731
    except (ConfigError, ServingError) as exc:
        log.error("%s", exc)
        return 2
    if settings.api_key is None:
        log.info("no API key configured: authentication is disabled")
    if args.port and args.port == args.rest_port:
        log.error("--port and --rest_port must differ")
        return 2
    manager.autoload = args.models_autoload
    manager.strict_readiness = args.strict_readiness
    app = create_app(manager, settings, grpc_port=args.port, grpc_host=args.grpc_bind_address or args.rest_bind_address,
                     reloader=reloader, poll_seconds=args.file_system_poll_wait_seconds,
                     autoload_timeout_seconds=args.models_autoload_timeout_seconds,
                     idle_unload_seconds=idle_unload_seconds(args))
    config = uvicorn.Config(app, host=args.rest_bind_address, port=args.rest_port, access_log=False,
                            log_level="trace" if args.log_level == "TRACE" else args.log_level.lower(),
                            timeout_graceful_shutdown=args.shutdown_grace_seconds, log_config=None)

    class GatewayServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            manager.ready = False  # readiness drops before the listener closes
            super().handle_exit(sig, frame)
            # uvicorn re-raises SIGTERM after a graceful shutdown (exit status 143); a drained
            # shutdown asked for by the orchestrator is a success: exit 0.
            captured = getattr(self, "_captured_signals", None)
            if captured and sig == signal.SIGTERM:
                captured.remove(sig)

    server = GatewayServer(config)
    # sse-starlette would end every open stream at SIGTERM; we let them finish within the grace period
    from sse_starlette.sse import AppStatus

    AppStatus.disable_automatic_graceful_drain()
    failed: list[BaseException] = []

    async def load_models() -> None:
        try:
            await asyncio.to_thread(load)
            log.info("all models loaded; serving on http://%s:%d", args.rest_bind_address, args.rest_port)
        except (ConfigError, ServingError) as exc:
            log.error("%s", exc)
            failed.append(exc)
            server.should_exit = True
        except Exception as exc:  # a bug while loading: say so and exit, rather than stay up never ready
            log.exception("loading the models failed")
            failed.append(exc)
            server.should_exit = True

    async def main_task() -> None:
        loader = asyncio.create_task(load_models())
        await server.serve()
        loader.cancel()

    asyncio.run(main_task())
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        shape_caches.configure(args.cpu_shape_caches == "on")  # before any model loads: oneDNN reads it once
    level = "DEBUG" if args.log_level == "TRACE" else args.log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "serve":
        return serve(args)
    if args.command == "pull":
        from . import model_repo

        return model_repo.pull_command(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
