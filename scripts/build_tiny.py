"""Build one tiny, random-weight diffusers model folder for tests and the offline demo.

    python scripts/build_tiny.py NAME OUT_DIR [--seed N]
    python scripts/build_tiny.py --list
    python scripts/build_tiny.py --write-hashes tests/tools/tiny_hashes.json

NAME is a folder name the shipped workflows use (tiny-sdxl, tiny-flux, ...; see --list); each is a recipe
in scripts/tiny_recipes/, registered in scripts/tiny_models.py. The folder has the standard diffusers
layout, safetensors weights, a few MiB in all, and loads with `ModularPipeline.from_pretrained(folder)`
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded.

If OUT_DIR already holds a complete build of NAME by this builder version with the same seed, the call
returns at once (it does not even import torch), so it can run before every start. A build is written to
a temporary folder next to OUT_DIR and renamed into place, so an interrupted build never leaves a
half-written OUT_DIR behind. Prints the folder's path.

--write-hashes builds every model at seeds 0 and 1 in a scratch folder and writes the sha256 of every file to
FILE: the table tests/tools/test_tiny_build.py pins the builds to. Rewrite it only for an intended change
of what is written (and bump that recipe's builder_version, so existing folders get rebuilt).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from tiny_build import file_hashes
from tiny_models import RECIPES

logger = logging.getLogger("build_tiny")


PINNED_SEEDS = (0, 1)  # 0 for the default folders; 1, because 0 leaves the per-build offset (seed * 100) out


def hash_table() -> dict:
    """The sha256 of every file of every registered model built at each of PINNED_SEEDS, and the versions
    that built them (torch's random streams, and what the savers write, can change between releases)."""
    import diffusers
    import torch
    import transformers

    seeds: dict[str, dict] = {str(seed): {} for seed in PINNED_SEEDS}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in PINNED_SEEDS:
            for name, recipe in RECIPES.items():
                seeds[str(seed)][name] = file_hashes(recipe.build(Path(scratch) / f"{name}-{seed}", seed=seed))
    versions = {module.__name__: module.__version__ for module in (diffusers, torch, transformers)}
    return {"built_with": versions, "seeds": seeds}


def write_hash_table(path: Path) -> None:
    path.write_text(json.dumps(hash_table(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("wrote the sha256 of %d models' files at seeds %s to %s", len(RECIPES), PINNED_SEEDS, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", choices=sorted(RECIPES), metavar="NAME", help="the model to build")
    parser.add_argument(
        "out_dir", nargs="?", type=Path, metavar="OUT_DIR", help="folder to write (kept as is when already built)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default 0)")
    parser.add_argument("--list", action="store_true", help="list the model names and exit")
    parser.add_argument("--write-hashes", type=Path, metavar="FILE", help="write the file hashes of every model")
    args = parser.parse_args(argv)
    if args.list:
        for name, recipe in RECIPES.items():
            print(f"{name:<20} {recipe.summary}")  # noqa: T201 - the command's output
        return 0
    if args.write_hashes:
        logging.basicConfig(level=logging.INFO, format="[build_tiny] %(message)s")
        write_hash_table(args.write_hashes)
        return 0
    if args.name is None or args.out_dir is None:
        parser.error("NAME and OUT_DIR are required (or --list)")
    logging.basicConfig(level=logging.INFO, format=f"[{args.name}] %(message)s")
    try:
        path = RECIPES[args.name].build(args.out_dir, seed=args.seed)
    except FileExistsError as error:
        logger.error("%s", error)
        return 1
    print(path)  # noqa: T201 - the command's output is the folder's path
    return 0


if __name__ == "__main__":
    sys.exit(main())
