#!/usr/bin/env bash
# README command 2: set everything up (idempotent), then lint and run the whole test suite against
# a real ComfyUI server.   scripts/test.sh [--comfyui PATH] [-- extra pytest arguments]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
provision_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    *) provision_args+=("$1"); shift ;;
  esac
done
"$repo/scripts/provision.sh" "${provision_args[@]}"
"$repo/scripts/install_browser.sh"
# shellcheck source=/dev/null
. "$repo/.comfyui.env"
export COMFYUI_DIR
cd "$repo"
"$VENV/bin/python" -m ruff check .
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$status"
