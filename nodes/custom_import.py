"""Importing one entry of a custom-blocks folder under a module name of its own.

Every entry is imported as its own package, named after the entry and its path
(`modular_diffusers_custom_<name>_<hash>`), so two entries never share a module: blocks shared on the Hub
very often call their file `block.py`, and their helpers `utils.py`. (diffusers' own
`ModularPipelineBlocks.from_pretrained` imports every local folder's file as
`diffusers_modules.local.<file>`, so a second `block.py` would run into the first one's module.)

A folder in diffusers' custom-block format (`modular_config.json` + the block's module) is loaded the way
`from_pretrained` loads a local folder, apart from that module name: the config's
`auto_map["ModularPipelineBlocks"]` (`"block.MyBlock"`) names the module and class, the config's
`requirements` are checked (diffusers warns about missing ones), and the class is called without
arguments. The folder's relative imports (`from .utils import x`, `from . import helpers`) resolve
inside the folder. A `.py` entry is imported as a module, a folder with `__init__.py` as a package.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType

from diffusers.modular_pipelines import ModularPipelineBlocks

from .naming import sanitize

logger = logging.getLogger(__name__)

CONFIG_FILE = "modular_config.json"
MODULE_PREFIX = "modular_diffusers_custom_"  # sys.modules name of every imported entry


class EntryError(Exception):
    """An entry that cannot be loaded, with the reason as its message."""


def module_name(name: str, path: Path) -> str:
    """The entry's own package name: its sanitized name plus a hash of its path (two folders of the same
    name in two roots never share one)."""
    digest = hashlib.sha1(str(Path(path).absolute()).encode("utf-8")).hexdigest()[:10]
    return f"{MODULE_PREFIX}{sanitize(name)}_{digest}"


def auto_map(path: Path) -> tuple[str, str, dict]:
    """(module, class, config) of a custom-block folder, from its `modular_config.json`."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        reference = (config.get("auto_map") or {}).get("ModularPipelineBlocks")
    except (OSError, ValueError, AttributeError) as error:
        raise EntryError(f"{CONFIG_FILE} cannot be read: {error}") from None
    if not isinstance(reference, str) or reference.count(".") != 1:
        raise EntryError(f'{CONFIG_FILE} has no "auto_map": {{"ModularPipelineBlocks": "<module>.<Class>"}}')
    module, class_name = reference.split(".")
    return module, class_name, config


def load_custom_format(name: str, path: Path) -> ModularPipelineBlocks:
    """The block of a folder in diffusers' custom-block format (see the module docstring)."""
    module_stem, class_name, config = auto_map(path)
    if not (path / f"{module_stem}.py").is_file():
        raise EntryError(f"{CONFIG_FILE} names {module_stem}.py, which is not in the folder")
    _check_requirements(config.get("requirements"))
    package = module_name(name, path)
    module = import_in_package(package, path, f"{package}.{module_stem}")
    block_class = getattr(module, class_name, None)
    if not (isinstance(block_class, type) and issubclass(block_class, ModularPipelineBlocks)):
        raise EntryError(f"{module_stem}.py has no ModularPipelineBlocks subclass named {class_name}")
    return block_class()


def import_module_entry(name: str, path: Path) -> ModuleType:
    """A `.py` entry as a module, a folder with `__init__.py` as a package, under its own name."""
    package = module_name(name, path)
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            package, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(package, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    return _executed(package, module, lambda: spec.loader.exec_module(module))


def import_in_package(package: str, folder: Path, module: str) -> ModuleType:
    """`module` of `folder`, imported with `folder` as the package `package` (its `__init__.py`, if any,
    is not run, as diffusers does not run it either)."""
    spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    parent = importlib.util.module_from_spec(spec)
    return _executed(package, parent, lambda: importlib.import_module(module))


def _executed(package: str, module: ModuleType, run) -> ModuleType:
    """Runs the import with `module` registered as `package`; a failed import leaves nothing behind."""
    forget(package)
    sys.modules[package] = module
    try:
        result = run()
    except BaseException:
        forget(package)
        raise
    return result if isinstance(result, ModuleType) else module


def forget(package: str) -> None:
    for loaded in [key for key in sys.modules if key == package or key.startswith(package + ".")]:
        del sys.modules[loaded]


def _check_requirements(requirements) -> None:
    if requirements is None:
        return
    try:  # diffusers' own check: it logs a warning per missing or mismatched package
        from diffusers.modular_pipelines.modular_pipeline_utils import _validate_requirements
    except ImportError:
        logger.debug("this diffusers has no requirements check for custom blocks")
        return
    _validate_requirements(requirements)
