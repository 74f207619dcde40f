#!/usr/bin/env bash
# Installs the system libraries Tributary builds against (Debian): OpenBLAS for matrix products.
# Safe to run repeatedly; does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail
packages=(libopenblas-dev pkg-config iproute2)
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
