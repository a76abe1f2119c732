#!/usr/bin/env bash
# Run the schema snapshot test (tests/unit/test_snapshot.py) against another diffusers version, in a
# temporary environment: the project's venv with that diffusers laid over it (a throwaway folder in
# front of PYTHONPATH). The venv itself is not changed. The test fails with a readable diff of every
# node whose schema the other version changes.
#   scripts/check_schemas.sh VERSION [PIP_SPEC ...]
# e.g. scripts/check_schemas.sh 0.43.0 'transformers==5.3.0'  (extra specs: packages that version needs newer)
set -euo pipefail
version=${1:?usage: scripts/check_schemas.sh DIFFUSERS_VERSION [PIP_SPEC ...]}
shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python="$repo/.venv/bin/python"
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$overlay" "diffusers==$version" "$@"
# shellcheck source=/dev/null
. "$repo/.comfyui.env"
export COMFYUI_DIR
cd "$repo"
PYTHONPATH="$overlay${PYTHONPATH:+:$PYTHONPATH}" "$python" -c 'import diffusers; print("diffusers", diffusers.__version__, "from", diffusers.__file__)'
PYTHONPATH="$overlay${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest tests/unit/test_snapshot.py -q -p no:cacheprovider
