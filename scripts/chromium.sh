#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the browser tests,
# installing Debian's chromium package first when it is missing.
set -euo pipefail
say() { echo "chromium.sh: $*" >&2; }
for c in chromium chromium-browser; do
	if p=$(command -v "$c" 2>/dev/null); then echo "$p"; exit 0; fi
done
say "installing Debian's chromium"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
command -v chromium
