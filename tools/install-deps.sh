#!/usr/bin/env bash
# Installs what Tributary needs from Debian: OpenBLAS for matrix products, pkg-config, iproute2
# (network namespaces for the shaped benchmark) and fortunes (an English text corpus).
# Safe to run repeatedly; does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail
packages=(libopenblas-dev pkg-config iproute2 fortunes)
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
