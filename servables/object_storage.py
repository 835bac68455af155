"""Model repositories on object storage: `s3://`, `gs://`, `azure://` / `az://` base paths.

As OVMS does (docs/using_cloud_storage.md), a remote `base_path` is read through the storage's own
client, here fsspec (s3fs, gcsfs, adlfs: the `storage` extra). Its files are mirrored into the
gateway cache (`<cache>/storage/<scheme>/<bucket>/<key>`) and served from there: a file already
mirrored with the same size and ETag is not downloaded again, a file gone from the bucket is
removed from the mirror, so version folders added or deleted in the bucket are picked up by the
same rescans as local ones.

Credentials come from the environment, as OVMS reads them:
- S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, and
  `S3_ENDPOINT` (or `AWS_ENDPOINT_URL`) for S3-compatible servers such as MinIO;
- Google Cloud Storage: `GOOGLE_APPLICATION_CREDENTIALS`;
- Azure Blob Storage: `AZURE_STORAGE_CONNECTION_STRING`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

log = logging.getLogger(__name__)

# URL scheme -> (fsspec protocol, the package that implements it)
SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("s3", "s3fs"),
    "gs": ("gs", "gcsfs"),
    "gcs": ("gs", "gcsfs"),
    "azure": ("az", "adlfs"),
    "az": ("az", "adlfs"),
    "abfs": ("az", "adlfs"),
}
CREDENTIALS = {"s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "gs": "GOOGLE_APPLICATION_CREDENTIALS",
               "az": "AZURE_STORAGE_CONNECTION_STRING"}
MANIFEST = ".genai-gateway-mirror.json"  # what each mirrored file was when it was downloaded
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def is_remote(path: str | os.PathLike[str]) -> bool:
    """True for `<scheme>://...` with a scheme in `SCHEMES`."""
    text = str(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


@dataclass(frozen=True)
class RemoteUrl:
    scheme: str  # as written (s3, gs, azure ...)
    protocol: str  # fsspec protocol
    bucket: str
    key: str  # path inside the bucket, no leading or trailing slash

    @classmethod
    def parse(cls, url: str) -> RemoteUrl:
        scheme, _, rest = url.partition("://")
        protocol, _ = SCHEMES[scheme.lower()]
        bucket, _, key = rest.strip("/").partition("/")
        if not bucket:
            raise ModelLoadError(f"{url}: no bucket in the URL")
        return cls(scheme.lower(), protocol, bucket, key.strip("/"))

    @property
    def remote_root(self) -> str:
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    def __str__(self) -> str:
        return f"{self.scheme}://{self.remote_root}"


def mirror_dir(url: str) -> Path:
    """Where the files of `url` are mirrored locally (not necessarily there yet)."""
    from .sources import cache_root

    parsed = RemoteUrl.parse(url)
    return cache_root() / "storage" / parsed.protocol / parsed.bucket / (parsed.key or "_root")


def _s3_options() -> dict[str, Any]:
    client: dict[str, Any] = {}
    endpoint = os.environ.get("S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        client["endpoint_url"] = endpoint if "://" in endpoint else f"https://{endpoint}"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    options: dict[str, Any] = {"client_kwargs": client}
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        options.update(key=os.environ["AWS_ACCESS_KEY_ID"], secret=os.environ["AWS_SECRET_ACCESS_KEY"],
                       token=os.environ.get("AWS_SESSION_TOKEN"))
    return options


def _options(protocol: str) -> dict[str, Any]:
    if protocol == "s3":
        return _s3_options()
    if protocol == "gs":
        credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return {"token": credentials} if credentials else {}
    if protocol == "az":
        connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        return {"connection_string": connection} if connection else {}
    return {}


def filesystem(parsed: RemoteUrl) -> Any:
    """A fresh fsspec filesystem for the URL's protocol, configured from the environment (no
    instance cache: credentials may have changed since the last reload)."""
    try:
        import fsspec
    except ImportError as exc:
        raise ModelLoadError(f"{parsed}: object storage needs fsspec: pip install 'genai-gateway[storage]'") from exc
    package = SCHEMES[parsed.scheme][1]
    try:
        return fsspec.filesystem(parsed.protocol, skip_instance_cache=True, **_options(parsed.protocol))
    except ImportError as exc:
        raise ModelLoadError(f"{parsed}: {parsed.scheme}:// needs {package}: "
                             f"pip install 'genai-gateway[storage]' (or pip install {package})") from exc


def _describe_error(parsed: RemoteUrl, exc: BaseException) -> str:
    """A load error a user can act on: which of bucket, key or credentials is wrong."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered or "specified bucket" in lowered:
        return f"{parsed}: bucket {parsed.bucket!r} does not exist ({text})"
    if isinstance(exc, PermissionError) or any(word in lowered for word in (
            "invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied", "forbidden", "403",
            "unable to locate credentials", "nocredentials")):
        return f"{parsed}: access denied; check {CREDENTIALS[parsed.protocol]} in the environment ({text})"
    if isinstance(exc, FileNotFoundError):
        return f"{parsed}: not found ({text})"
    return f"{parsed}: cannot list the model files ({text})"


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def _fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("content_settings", {})
    return {"size": int(info.get("size") or 0), "tag": str(tag) if not isinstance(tag, dict) else ""}


def sync(url: str) -> Path:
    """Mirror the files under `url` into the cache and return the local folder.

    Raises `ModelLoadError` naming the bucket, key or credentials when the listing fails or finds
    no files. Downloads go to a temporary file renamed into place, so a reader (or a crash) never
    sees half a file.
    """
    parsed = RemoteUrl.parse(url)
    local = mirror_dir(url)
    fs = filesystem(parsed)
    try:
        try:
            fs.ls(parsed.bucket, refresh=True)  # raises on a missing bucket or refused credentials
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"NoSuchBucket: {exc}") from exc
        listing = fs.find(parsed.remote_root, detail=True)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(_describe_error(parsed, exc)) from exc
    prefix = parsed.remote_root.rstrip("/") + "/"
    remote: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, info in listing.items():
        if info.get("type", "file") != "file" or name.endswith("/"):
            continue
        relative = name[len(prefix):] if name.startswith(prefix) else Path(name).name
        if not relative or ".." in Path(relative).parts:
            continue
        remote[relative] = (name, _fingerprint(info))
    if not remote:
        raise ModelLoadError(f"{parsed}: no files under this path (is the key right?)")
    with _lock_for(local):
        local.mkdir(parents=True, exist_ok=True)
        manifest_file = local / MANIFEST
        try:
            manifest = json.loads(manifest_file.read_text())
        except (OSError, ValueError):
            manifest = {}
        downloaded = 0
        for relative, (name, fingerprint) in sorted(remote.items()):
            target = local / relative
            if target.is_file() and manifest.get(relative) == fingerprint:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            os.close(handle)
            try:
                fs.get_file(name, tmp)
                os.replace(tmp, target)
            except Exception as exc:
                Path(tmp).unlink(missing_ok=True)
                raise ModelLoadError(_describe_error(parsed, exc)) from exc
            manifest[relative] = fingerprint
            downloaded += 1
        removed = _prune(local, set(remote))
        for relative in removed:
            manifest.pop(relative, None)
        manifest_file.write_text(json.dumps(manifest))
    if downloaded or removed:
        log.info("%s: mirrored into %s (%d downloaded, %d removed, %d up to date)", parsed, local, downloaded,
                 len(removed), len(remote) - downloaded)
    return local


def _prune(local: Path, keep: set[str]) -> list[str]:
    """Delete mirrored files (and then empty folders) that are no longer in the bucket."""
    removed = []
    for path in sorted(local.rglob("*"), reverse=True):
        relative = path.relative_to(local).as_posix()
        if path.is_file() and path.name != MANIFEST and relative not in keep and not path.name.startswith("."):
            path.unlink()
            removed.append(relative)
        elif path.is_dir() and not any(path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
    return removed
