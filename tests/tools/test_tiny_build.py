"""What every tiny-model build does, whatever its recipe (each registered model is a parameter): offline,
deterministic and pinned to committed hashes, idempotent, a standard diffusers layout of a few MiB (1 GB for
tiny-flux-3072), a marker that tells one model's finished folder from another's, a rebuild with another seed
replaces the folder, and a folder the builder did not make is never replaced. What each family's folder does when
loaded and run is in the per-family files beside this one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from build_tiny import main
from comfy_harness import REPO
from tiny_build import MARKER
from tiny_checks import file_hashes, file_mtimes
from tiny_models import RECIPES, build_tiny

NAMES = sorted(RECIPES)
HASHES = Path(__file__).with_name("tiny_hashes.json")
REWRITE = "python scripts/build_tiny.py --write-hashes tests/tools/tiny_hashes.json"
MIB = 2**20
# the others: 8 MiB; tiny-flux-3072's transformer is FLUX.1's width: 0.53 B float16 parameters
# tiny-hunyuan-video15's transformer has ByT5's projection, 2048 wide whatever its config (4.2 M float16 parameters)
MAX_SIZE = {"tiny-sdxl": 16 * MIB, "tiny-flux-3072": 1030 * MIB, "tiny-hunyuan-video15": 16 * MIB}
LARGE = ("tiny-flux-3072",)  # its builds here are removed after each test (see _drop_large_builds)


@pytest.fixture(autouse=True)
def _drop_large_builds(request, tmp_path):
    """pytest keeps every tmp_path of the last three sessions: a large model's builds (1 GB) go after its test."""
    yield
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("name") in LARGE:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _weights(recipe, component: str) -> str:
    library = recipe.models[component].cls.partition(".")[0]
    return f"{component}/{'model' if library == 'transformers' else 'diffusion_pytorch_model'}.safetensors"


def _check_layout(name: str, folder: Path, hashes: dict[str, str]) -> None:
    """The standard diffusers layout, safetensors weights, a few MiB, and the recipe's pipeline class."""
    recipe = RECIPES[name]
    for component in recipe.components:
        assert (folder / component).is_dir(), component
    assert {_weights(recipe, component) for component in recipe.models} <= set(hashes)
    for tokenizer in recipe.tokenizers:  # tokenizer.json for a `tokenizers`-backed one (not ByT5's bytes)
        config = json.loads((folder / tokenizer / "tokenizer_config.json").read_text())
        assert config.get("backend") == "custom" or f"{tokenizer}/tokenizer.json" in hashes, tokenizer
    assert "scheduler/scheduler_config.json" in hashes
    assert not any(path.endswith(".bin") for path in hashes)
    assert sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) < MAX_SIZE.get(name, 8 * MIB)

    # A family without a classic pipeline (no `pipeline`) has only its modular pipeline's index.
    index_file = "model_index.json" if recipe.pipeline else "modular_model_index.json"
    index = json.loads((folder / index_file).read_text())
    assert index["_class_name"] == (recipe.pipeline or recipe.modular_pipeline).rpartition(".")[2]
    assert set(recipe.components) <= set(index)
    assert [None, None] not in index.values()
    marker = json.loads((folder / MARKER).read_text())
    assert (marker["builder_version"], marker["seed"]) == (recipe.builder_version, 0)
    assert marker.get("kind") == (name if recipe.record_kind else None)


@pytest.mark.parametrize("name", NAMES)
def test_build_is_offline_deterministic_and_idempotent(name, tmp_path, tiny_models, no_network):
    first = build_tiny(name, tmp_path / "a", seed=0)
    assert first == (tmp_path / "a").absolute()
    hashes = file_hashes(first)
    assert hashes == file_hashes(tiny_models[name])  # the session's build of the same model and seed
    _check_layout(name, first, hashes)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a"]  # nothing left beside it

    before = file_mtimes(first)
    started = time.monotonic()
    assert build_tiny(name, first, seed=0) == first
    assert time.monotonic() - started < 0.5
    assert file_mtimes(first) == before


def _assert_pinned(name: str, seed: int, folder: Path) -> None:
    table = json.loads(HASHES.read_text())
    assert file_hashes(folder) == table["seeds"][str(seed)].get(name), (
        f"{name} at seed {seed} is no longer byte-identical to {HASHES.name} (built with {table['built_with']}), "
        "so folders built before are not what a build writes now. If the change is intended, bump the "
        f"recipe's builder_version (existing folders get rebuilt) and rewrite the table: {REWRITE}. If a "
        "torch, diffusers or transformers upgrade changed the bytes, rewrite the table and bump every "
        "builder_version it changed."
    )


@pytest.mark.parametrize("name", NAMES)
def test_build_matches_the_committed_hashes(name, tiny_models):
    _assert_pinned(name, 0, tiny_models[name])  # seed 1: test_other_seed_replaces_the_build


def test_the_hash_table_names_exactly_the_registered_models():
    seeds = json.loads(HASHES.read_text())["seeds"]
    assert {seed: sorted(models) for seed, models in seeds.items()} == {"0": NAMES, "1": NAMES}, f"run {REWRITE}"


@pytest.mark.parametrize("name", NAMES)
def test_other_seed_replaces_the_build(name, tmp_path):
    out = build_tiny(name, tmp_path / "tiny", seed=0)
    seed0 = file_hashes(out)
    build_tiny(name, out, seed=1)
    seed1 = file_hashes(out)
    assert json.loads((out / MARKER).read_text())["seed"] == 1
    _assert_pinned(name, 1, out)
    recipe = RECIPES[name]
    for component in recipe.models:
        assert seed0[_weights(recipe, component)] != seed1[_weights(recipe, component)], component
        assert seed0[f"{component}/config.json"] == seed1[f"{component}/config.json"], component
    assert RECIPES[name].is_complete(out, seed=1) and not RECIPES[name].is_complete(out, seed=0)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]


@pytest.mark.parametrize("name", NAMES)
def test_refuses_to_replace_a_foreign_folder(name, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_tiny(name, foreign)
    assert main([name, str(foreign)]) == 1
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]


def test_a_folder_is_a_finished_build_of_its_own_model_only(tiny_models):
    # e.g. a Kontext folder is not a finished Flux build (same weights) and vice versa, nor is a Wan 2.2
    # folder a Wan 2.1 one; the SDXL marker, which records no kind, is told apart from the others too.
    for name, recipe in RECIPES.items():
        assert [other for other in NAMES if recipe.is_complete(tiny_models[other])] == [name]


def test_command_line_keeps_finished_folders_and_prints_their_paths(tiny_models, capsys):
    before = {name: file_mtimes(tiny_models[name]) for name in NAMES}
    for name in NAMES:
        assert main([name, str(tiny_models[name])]) == 0
        assert main([name, str(tiny_models[name]), "--seed", "0"]) == 0
    assert capsys.readouterr().out.split() == [str(tiny_models[name]) for name in NAMES for _ in range(2)]
    assert {name: file_mtimes(tiny_models[name]) for name in NAMES} == before

    assert main(["--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(RECIPES)
    with pytest.raises(SystemExit):
        main(["tiny-nonexistent", "out"])


def test_a_finished_folder_is_kept_without_importing_torch(tiny_models):
    """So the command can run before every start at no cost."""
    folders = {name: str(path) for name, path in tiny_models.items()}
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from tiny_models import build_tiny\n"
        f"for name, folder in {folders!r}.items():\n"
        "    build_tiny(name, folder)\n"
        "heavy = sorted({'torch', 'diffusers', 'transformers', 'tokenizers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
