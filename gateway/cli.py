"""`genai-gateway serve`: OVMS-compatible flags where sensible."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("genai_gateway")

LLM_KNOBS = ("cache_size", "max_num_batched_tokens", "max_num_seqs", "enable_prefix_caching",
             "dynamic_split_fuse", "max_tokens_limit", "max_queue_size")


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
    serve.add_argument("--task", choices=["text_generation", "embeddings", "rerank", "image_generation"])
    serve.add_argument("--config_path", help="OVMS-style config.json with model_config_list")
    serve.add_argument("--target_device", default=None)
    serve.add_argument("--plugin_config", type=_json_object, default=None, help="OpenVINO properties (JSON)")
    knobs = serve.add_argument_group("text generation scheduler")
    knobs.add_argument("--cache_size", type=int, help="KV cache in GB; 0 grows dynamically (default 0)")
    knobs.add_argument("--max_num_batched_tokens", type=int, help="tokens per step (default 256)")
    knobs.add_argument("--max_num_seqs", type=int, help="sequences generated at once (default 256)")
    knobs.add_argument("--enable_prefix_caching", type=_bool, help="reuse KV blocks of shared prefixes (default true)")
    knobs.add_argument("--dynamic_split_fuse", type=_bool, help="chunked prefill (default true)")
    knobs.add_argument("--max_tokens_limit", type=int, help="upper bound for max_tokens, and its default")
    knobs.add_argument("--max_queue_size", type=int, help="requests waiting for a slot before 503 (default 512)")
    serve.add_argument("--metrics_enable", action="store_true")
    serve.add_argument("--log_level", default="INFO", choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def llm_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in LLM_KNOBS if getattr(args, k) is not None}
    if args.target_device:
        options["device"] = args.target_device
    if args.plugin_config is not None:
        options["plugin_config"] = args.plugin_config
    return options


def model_specs(args: argparse.Namespace):
    """The models to serve: config file, one model from flags, or the built-in defaults."""
    from servables import sources
    from servables.base import ModelSpec
    from servables.config_file import load_config_file
    from servables.errors import ServingError

    llm_defaults = llm_options_from_args(args)
    if args.config_path:
        if args.model_path:
            raise SystemExit("--config_path and --model_path cannot be used together")
        specs = load_config_file(Path(args.config_path))
        return [ModelSpec(s.name, s.base_path, s.task, {**llm_defaults, **s.options}) if s.task == "text_generation"
                else s for s in specs]
    if args.model_path:
        if not args.model_name:
            raise SystemExit("--model_path needs --model_name")
        spec = sources.local_spec(args.model_name, Path(args.model_path), args.task)
        options = llm_defaults if spec.task == "text_generation" else {}
        return [ModelSpec(spec.name, spec.base_path, spec.task, options)]
    specs = [sources.default_llm_spec(llm_defaults)]
    try:
        specs.append(sources.default_embeddings_spec())
    except ServingError as exc:
        log.warning("not serving the default embedding model %s: %s", sources.DEFAULT_EMBEDDINGS_NAME, exc)
    return specs


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from scheduler.model_manager import ModelManager
    from servables.config_file import ConfigError
    from servables.errors import ServingError

    manager = ModelManager()
    try:
        manager.load(model_specs(args))
    except (ConfigError, ServingError) as exc:
        log.error("%s", exc)
        manager.close()
        return 2
    app = create_app(manager, metrics_enable=args.metrics_enable)
    log.info("serving on http://%s:%d", args.rest_bind_address, args.rest_port)
    uvicorn.run(app, host=args.rest_bind_address, port=args.rest_port, log_level=args.log_level.lower()
                if args.log_level != "TRACE" else "trace", access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = "DEBUG" if args.log_level == "TRACE" else args.log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "serve":
        return serve(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
