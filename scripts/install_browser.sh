#!/usr/bin/env bash
# Install the headless Chromium that the canvas tests and scripts/make_ui_workflows.py drive over CDP.
# Idempotent: does nothing when the binary is already there. Debian/Ubuntu (apt) only.
set -euo pipefail
binary=/usr/lib/chromium/chromium-headless-shell
if [ -x "$binary" ]; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
echo "install_browser.sh: installing chromium-headless-shell" >&2
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell
if [ ! -x "$binary" ]; then
  echo "install_browser.sh: $binary is still missing after apt-get install" >&2
  exit 1
fi
