"""A HuggingFace-hub-compatible HTTP server on 127.0.0.1 serving repositories from local folders.

Implements what `huggingface_hub` (1.x) uses for `snapshot_download` and `hf_hub_download`:
- `GET /api/models/{org}/{name}[/revision/{rev}]`: repo info with `sha` and `siblings`;
- `HEAD|GET /{org}/{name}/resolve/{rev}/{file}`: `X-Repo-Commit`, `ETag`, `Content-Length`, and
  `Range: bytes=N-` (206) so that interrupted downloads resume;
- 404s carry `X-Error-Code: RepoNotFound | EntryNotFound | RevisionNotFound` as the hub's do.
`cut_once` makes the first GET of a file stop half-way, as a dropped connection would.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_API = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?/?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Path] = {}
        self.cut_once: set[tuple[str, str]] = set()
        self.forbidden: set[tuple[str, str]] = set()  # (repo, file) answered 403
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_repo(self, repo_id: str, folder: Path) -> None:
        self.repos[repo_id] = Path(folder)

    def files(self, repo_id: str) -> list[str]:
        root = self.repos[repo_id]
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def commit(self, repo_id: str) -> str:
        digest = hashlib.sha1()
        for name in self.files(repo_id):
            digest.update(f"{name}:{(self.repos[repo_id] / name).stat().st_size};".encode())
        return digest.hexdigest()

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, data: dict) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._route()

            def do_HEAD(self) -> None:
                self._route()

            def _route(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                api = _API.match(path)
                if api:
                    return self._info(api.group(1), api.group(2))
                resolve = _RESOLVE.match(path)
                if resolve:
                    return self._file(*resolve.groups())
                self._error(404, "RepoNotFound", "Repository not found")

            def _known(self, repo: str, revision: str | None) -> bool:
                if repo not in hub.repos:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return False
                if revision not in (None, "main", hub.commit(repo)):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return False
                return True

            def _info(self, repo: str, revision: str | None) -> None:
                if self._known(repo, revision):
                    self._json({"id": repo, "modelId": repo, "sha": hub.commit(repo), "private": False,
                                "siblings": [{"rfilename": f} for f in hub.files(repo)]})

            def _file(self, repo: str, revision: str, name: str) -> None:
                if not self._known(repo, revision):
                    return
                file = hub.repos[repo] / name
                if not file.is_file():
                    return self._error(404, "EntryNotFound", f"{name} does not exist on {revision}")
                if (repo, name) in hub.forbidden:
                    return self._error(403, "Forbidden", f"access to {name} is forbidden")
                data = file.read_bytes()
                start = 0
                match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and self.command == "GET":
                    start = int(match.group(1))
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", hub.commit(repo))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if (repo, name) in hub.cut_once and len(body) > 1:
                    hub.cut_once.discard((repo, name))
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
