"""The container image, built and run for real with podman: ready, streams a chat, exits cleanly on SIGTERM.

No registry is reachable here, so the base image is made locally (see `make_base_image`) and passed
as the Dockerfile's BASE build argument; pip inside the build reads the host's pip configuration and
package index (mounted read-only). Skipped, with the reason, where podman or the base cannot be had.
Environment: GENAI_GATEWAY_BASE_IMAGE names an existing base image to use instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.server import free_port

pytestmark = pytest.mark.slow  # the first run makes the base image and builds (minutes); later builds are cached

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/genai-gateway:test"
BASE = os.environ.get("GENAI_GATEWAY_BASE_IMAGE", "localhost/debian-python:bookworm")
ROOTFS = Path("/var/tmp/genai-gateway-rootfs")
# podman on this machine kind: runc, cgroupfs (no systemd); /etc/containers/containers.conf sets
# `default_ulimits = []` under [containers]
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
# what pip reads on the host: its config files, the CA bundle they name (the host may sit behind a
# TLS-inspecting proxy) and the local indexes; mounted read-only during the build, not copied into the image
PIP_MOUNTS = [p for p in ("/etc/xdg/pip", "/etc/pip.conf", str(Path.home() / ".config/pip/pip.conf"),
                          "/etc/ssl/certs/ca-certificates.crt", "/opt/pypi", "/opt/pypi-more", "/opt/wheels")
              if Path(p).exists()]


def podman(*args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=check)


def logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return (result.stdout + result.stderr)[-3000:]


def make_base_image() -> None:
    """A minimal Debian bookworm with python3 (3.11) and venv: debootstrap, then `podman import`."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return
    if shutil.which("debootstrap") is None:
        pytest.skip(f"no base image {BASE} and no debootstrap to make one")
    if not (ROOTFS / "usr/bin/python3").exists():
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        "bookworm", str(ROOTFS), "http://deb.debian.org/debian"], check=True, capture_output=True,
                       timeout=1800)
    tar = subprocess.Popen(["tar", "-C", str(ROOTFS), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([*PODMAN, "import", "-", BASE], stdin=tar.stdout, check=True, capture_output=True, timeout=600)
    tar.wait()


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman runc)")
    if podman("info", check=False, timeout=120).returncode != 0:
        pytest.skip("podman cannot run here")
    make_base_image()
    # the build runs as root: the host user's pip.conf goes to root's config folder
    volumes = [arg for path in PIP_MOUNTS for arg in
               ("--volume", f"{path}:{path.replace(str(Path.home()), '/root')}:ro")]
    podman("build", "--build-arg", f"BASE={BASE}", *volumes, "-t", IMAGE, str(ROOT))
    return IMAGE


def test_image_serves_a_streamed_chat_and_exits_cleanly_on_sigterm(image):
    port = free_port()
    name = f"genai-gateway-test-{port}"
    podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", image)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            running = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert running == "true" and time.monotonic() < deadline, logs(name)
            time.sleep(1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v3", api_key="unused", max_retries=0)
        chunks = client.chat.completions.create(model="HuggingFaceTB/SmolLM2-135M-Instruct", max_tokens=8,
                                                messages=[{"role": "user", "content": "Say hello."}], stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip()
        podman("kill", "--signal", "SIGTERM", name)
        status = podman("wait", name, timeout=120).stdout.strip()
        assert status == "0", logs(name)
    finally:
        podman("rm", "-f", name, check=False)
