"""CLI modes that manage a model repository instead of serving: pull, list, add/remove config entries."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from servables.config_file import ConfigError
from servables.errors import ServingError

log = logging.getLogger("genai_gateway")


def _pull_request(args: argparse.Namespace, source_model: str | None = None):
    from servables.pull import PullRequest

    if not args.model_repository_path:
        raise ConfigError("--source_model needs --model_repository_path (or $OVMS_MODEL_REPOSITORY_PATH)")
    return PullRequest(
        source_model=source_model or args.source_model, repository=Path(args.model_repository_path),
        task="text_generation" if source_model else args.task,
        weight_format=args.weight_format, gguf_filename=args.gguf_filename, overwrite=args.overwrite_models,
        revision=args.revision, extra_quantization_params=args.extra_quantization_params,
    )


def pull_for_serving(args: argparse.Namespace) -> tuple[str, str]:
    """`serve --source_model X --model_repository_path D`: pull when missing; returns (path, name)."""
    from servables.pull import pull

    if args.config_path:
        raise ConfigError("--source_model and --config_path cannot be used together")
    path = pull(_pull_request(args))
    draft = _pull_draft(args)
    if draft is not None:  # served from the pulled folder
        args.draft_model, args.draft_source_model = str(draft), None
    return str(path), args.model_name or args.source_model


def _pull_draft(args: argparse.Namespace) -> Path | None:
    """`--draft_source_model` next to `--source_model`: the draft is pulled into the same repository."""
    from servables.pull import pull

    source = getattr(args, "draft_source_model", None)
    return pull(_pull_request(args, source)) if source else None


def pull_command(args: argparse.Namespace) -> int:
    """`genai-gateway pull ...` (or `serve --pull ...`): download/convert, then exit."""
    from servables.pull import pull

    try:
        path = pull(_pull_request(args))
        _pull_draft(args)
    except (ConfigError, ServingError) as exc:
        log.error("%s", exc)
        return 2
    print(path)
    return 0


def _config_path(args: argparse.Namespace) -> Path:
    if args.config_path:
        return Path(args.config_path)
    if args.model_repository_path:
        return Path(args.model_repository_path) / "config.json"
    raise ConfigError("pass --config_path (or --model_repository_path, whose config.json is used)")


def run(args: argparse.Namespace) -> int:
    from servables import config_edit

    try:
        if args.pull:
            if not args.source_model:
                raise ConfigError("--pull needs --source_model")
            return pull_command(args)
        if args.list_models:
            if args.add_to_config or args.remove_from_config:
                raise ConfigError("--list_models cannot be combined with --add_to_config or --remove_from_config")
            if not args.model_repository_path:
                raise ConfigError("--list_models needs --model_repository_path")
            for name in config_edit.list_models(Path(args.model_repository_path)):
                print(name)
            return 0
        if not args.model_name:
            raise ConfigError("--add_to_config and --remove_from_config need --model_name")
        config_path = _config_path(args)
        if args.remove_from_config:
            if args.model_path:
                raise ConfigError("--remove_from_config cannot take --model_path")
            config_edit.remove_from_config(config_path, args.model_name)
            print(f"removed {args.model_name} from {config_path}")
            return 0
        if args.model_path:
            base_path = Path(args.model_path)
        elif args.model_repository_path:
            base_path = Path(args.model_repository_path) / (args.source_model or args.model_name)
        else:
            raise ConfigError("--add_to_config needs --model_path or --model_repository_path")
        extra = {"task": args.task} if args.task else {}
        changed = config_edit.add_to_config(config_path, args.model_name, base_path, extra)
        print(f"{'added' if changed else 'already present:'} {args.model_name} -> {config_path}")
        return 0
    except (ConfigError, ServingError) as exc:
        log.error("%s", exc)
        return 2
