#!/usr/bin/env bash
# README command 1: set everything up (idempotent), start ComfyUI with this pack on
# http://127.0.0.1:8188, run a shipped workflow on the default tiny model, print where its result is,
# and keep serving the canvas until Ctrl-C.
#   scripts/run.sh [--comfyui PATH] [--workflow NAME] [--port N] [--exit] [--base-directory DIR]
# The job replaces this shell (exec), so Ctrl-C, SIGTERM and SIGHUP reach it directly; it stops the
# ComfyUI server it started on each of them, and on every other way out (scripts/main_job.py).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
provision_args=()
job_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --comfyui) provision_args+=("$1" "$2"); shift 2 ;;
    *) job_args+=("$1"); shift ;;
  esac
done
"$repo/scripts/provision.sh" "${provision_args[@]}"
# shellcheck source=/dev/null
. "$repo/.comfyui.env"
export COMFYUI_DIR
exec "$VENV/bin/python" "$repo/scripts/main_job.py" "${job_args[@]}"
