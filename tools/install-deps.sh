#!/usr/bin/env bash
# Installs what Tributary needs from Debian: OpenBLAS for matrix products, pkg-config, iproute2
# (network namespaces for the shaped benchmark), fortunes (an English text corpus) and Chromium
# (the dashboard's browser test); from PyPI, Prometheus' Python parser and a DevTools client for
# the tests' tools/check_metrics.py and tools/dashboard_check.py.
# Safe to run repeatedly; does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail
packages=(libopenblas-dev pkg-config iproute2 fortunes chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if ! python3 -c "import websocket, prometheus_client, cryptography, numpy" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check prometheus_client websocket-client cryptography numpy
fi
# The PyTorch example's test (examples/pytorch_gpt2.py). PyPI's torch wheel is large (about 4 minutes here).
if ! python3 -c "import torch, transformers, safetensors" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check torch transformers safetensors
fi
