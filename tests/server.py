"""Start the real server (`python -m gateway.cli serve ...`) on a free 127.0.0.1 port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, *args: str, log_name: str = "server", env: dict[str, str] | None = None):
        self.port = free_port()
        self.args = ["serve", "--rest_port", str(self.port), *args]
        log_dir = Path(os.environ.get("PYTEST_SERVER_LOG_DIR", "/tmp"))
        self.log_path = log_dir / f"genai-gateway-{log_name}-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> ServerProcess:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", *self.args], cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(f"{self.url}/v2/health/ready", timeout=2)
            except httpx.HTTPError:
                return False
            # started: ready, or the initial load finished with failed models (tests that configure them)
            return r.status_code == 200 or (r.status_code == 503 and "failed_models" in r.json())

        try:
            wait_for(ready, timeout, 0.3, "readiness")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}") from None
        return self

    def log(self) -> str:
        # errors="replace": native libraries may print partial UTF-8 sequences
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
