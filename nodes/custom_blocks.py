"""Your own blocks as nodes: every `ModularPipelineBlocks` in the "modular_blocks" folders of `folder_paths`
(`models/modular_blocks`, plus those of extra_model_paths.yaml). An entry of such a folder is a folder in
diffusers' custom-block format (`modular_config.json` + the block's `.py`, what `block.save_pretrained(dir)`
writes), or a Python module (`name.py`, or a folder with `__init__.py`) whose own `ModularPipelineBlocks`
subclasses each become a node. Each entry is imported under a module name of its own (`custom_import.py`),
so two folders that both call their file `block.py` both load.

Loading runs the entry's code, so nothing is imported unless `MDIFF_ALLOW_CUSTOM_CODE` is set, and diffusers'
`DIFFUSERS_DISABLE_REMOTE_CODE` wins over it. Block nodes are made by `make_block_node`, like the built-in
ones. A broken entry disables only itself: one log line, its status (`/modular_diffusers/custom_blocks`) and
an error node on the canvas. Block nodes show every input a node can feed (`sockets.SHOW_TYPED`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import folder_paths
from comfy_api.latest import io
from diffusers.modular_pipelines import ModularPipelineBlocks

from ..adapters.factory import BlockNodeDefinition, block_description, make_block_node
from .custom_errors import describe_error, make_error_node, one_line
from .custom_import import CONFIG_FILE, EntryError, import_module_entry, load_custom_format
from .naming import ROOT_CATEGORY, readable, sanitize

logger = logging.getLogger(__name__)

FOLDER_NAME = "modular_blocks"
STATUS_ROUTE = "/modular_diffusers/custom_blocks"
ALLOW_ENV = "MDIFF_ALLOW_CUSTOM_CODE"
KILL_ENV = "DIFFUSERS_DISABLE_REMOTE_CODE"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
NODE_PREFIX = "MDiff_Custom_"
CATEGORY = f"{ROOT_CATEGORY}/Custom"

# Entry kinds and states.
CUSTOM_FORMAT = "diffusers custom block"
MODULE = "module"
PACKAGE_ENTRY = "package"
NOT_A_BLOCK = "not a block"
LOADED, NOT_ALLOWED, BROKEN = "loaded", "not allowed", "broken"
NOT_SCANNED = {"folders": [], "custom_code_allowed": False, "reason": "not scanned yet", "entries": []}


def env_flag(value: str | None) -> bool:
    """1/true/yes/on, any case, surrounding spaces ignored."""
    return (value or "").strip().lower() in TRUE_VALUES


def custom_code_policy(environ: Mapping[str, str] | None = None) -> tuple[bool, str | None]:
    """Whether custom block code may run, and when not, why (with how to allow it)."""
    environ = os.environ if environ is None else environ
    if env_flag(environ.get(KILL_ENV)):
        return False, (
            f"{KILL_ENV} is set, diffusers' switch that turns custom code off (it wins over {ALLOW_ENV}); "
            f"unset it and set {ALLOW_ENV}=1 to load them"
        )
    if env_flag(environ.get(ALLOW_ENV)):
        return True, None
    return False, f"custom code is off: set {ALLOW_ENV}=1 in ComfyUI's environment and restart to load them"


def block_node_id(folder: str, class_name: str) -> str:
    return f"{NODE_PREFIX}{sanitize(folder)}_{sanitize(class_name)}"


def error_node_id(folder: str) -> str:
    return f"{NODE_PREFIX}{sanitize(folder)}_LoadError"


@dataclass
class Entry:
    """One entry of a custom-blocks folder and what became of it."""

    name: str
    path: Path
    root: Path
    kind: str
    state: str = NOT_ALLOWED
    nodes: list[str] = field(default_factory=list)
    error_node: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        return f"{CATEGORY}/{self.name}"

    def fail(self, reason: str) -> None:
        self.state = BROKEN
        self.reasons.append(one_line(reason))

    def status(self) -> dict[str, Any]:
        return {
            "folder": self.name,
            "path": str(self.path),
            "root": str(self.root),
            "kind": self.kind,
            "state": self.state,
            "nodes": list(self.nodes),
            "error_node": self.error_node,
            "reason": "; ".join(self.reasons) or None,
        }


def find_entries(roots: Iterable[str | Path]) -> list[Entry]:
    """The entries of every folder in `roots` (a folder listed twice counts once), in folder order and
    by name within a folder. Hidden entries, `__pycache__` and files other than `.py` are not entries."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for root in roots:
        root = Path(root)
        if os.path.realpath(root) in seen or not root.is_dir():
            continue
        seen.add(os.path.realpath(root))
        for child in sorted(root.iterdir(), key=lambda path: path.name):
            if child.name.startswith(".") or child.name == "__pycache__":
                continue
            if child.is_dir():
                if (child / CONFIG_FILE).is_file():
                    kind = CUSTOM_FORMAT
                elif (child / "__init__.py").is_file():
                    kind = PACKAGE_ENTRY
                else:
                    kind = NOT_A_BLOCK
                entries.append(Entry(child.name, child, root, kind))
            elif child.suffix == ".py" and child.is_file():
                entries.append(Entry(child.stem, child, root, MODULE))
    return entries


def check_entries(entries: Sequence[Entry]) -> None:
    """What is wrong without running any code: folders without a block. (Two entries whose node ids
    clash are judged when they load: a broken one takes no id, so it never disables a good one.)"""
    for entry in entries:
        if entry.kind == NOT_A_BLOCK:
            entry.fail(f"no block in it: neither {CONFIG_FILE} (diffusers' custom-block format) nor __init__.py")


def own_block_classes(module: ModuleType) -> list[type[ModularPipelineBlocks]]:
    """The block classes a module defines itself (or in its own submodules), in definition order."""
    found: list[type[ModularPipelineBlocks]] = []
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ModularPipelineBlocks)
            and (value.__module__ == module.__name__ or value.__module__.startswith(module.__name__ + "."))
            and not value.__name__.startswith("_")
            and value not in found
        ):
            found.append(value)
    return found


def _instances(entry: Entry) -> list[tuple[str, Any]]:
    """(class name, block instance or the error that making it raised) for each block of the entry.
    Raises when the entry as a whole cannot be loaded."""
    if entry.kind == CUSTOM_FORMAT:
        try:
            block = load_custom_format(entry.name, entry.path)
        except EntryError:
            raise
        except (Exception, SystemExit) as error:
            raise EntryError(f"loading it failed: {describe_error(error, entry.path)}") from None
        return [(type(block).__name__, block)]
    classes = own_block_classes(import_module_entry(entry.name, entry.path))
    if not classes:
        raise EntryError(
            "it defines no ModularPipelineBlocks subclass of its own (classes it imports do not count, "
            "nor names starting with _)"
        )
    made: list[tuple[str, Any]] = []
    for cls in classes:
        try:
            made.append((cls.__name__, cls()))
        except (Exception, SystemExit) as error:
            made.append((cls.__name__, error))
    return made


def load_entry(entry: Entry, taken: dict[str, Path]) -> list[type[io.ComfyNode]]:
    """The block nodes of an allowed entry; every failure is recorded on the entry, never raised.
    `taken` (node id -> the entry path that has it) gets the ids of the nodes made."""
    try:
        instances = _instances(entry)
    except (Exception, SystemExit) as error:
        entry.fail(str(error) if isinstance(error, EntryError) else describe_error(error, entry.path))
        return []
    nodes: list[type[io.ComfyNode]] = []
    for class_name, block in instances:
        node_id = block_node_id(entry.name, class_name)
        if isinstance(block, BaseException):
            entry.fail(f"{class_name}: {describe_error(block, entry.path)}")
        elif node_id in taken:
            entry.fail(f"{class_name}: its node id {node_id} is taken by {taken[node_id]}; rename one of them")
        else:
            node = _block_node(entry, node_id, class_name, block)
            if node is not None:
                nodes.append(node)
                taken[node_id] = entry.path
                entry.nodes.append(node_id)
    if not entry.reasons:
        entry.state = LOADED
    return nodes


def _block_node(
    entry: Entry, node_id: str, class_name: str, block: ModularPipelineBlocks
) -> type[io.ComfyNode] | None:
    try:
        node = make_block_node(
            BlockNodeDefinition(
                node_id=node_id,
                block=block,
                display_name=readable(class_name),
                category=entry.category,
                description=block_description(block) or f"{class_name}, a custom block from {entry.path}",
            )
        )
        node.GET_NODE_INFO_V1()  # what ComfyUI calls to register and list it: an error here is this entry's
        return node
    except (Exception, SystemExit) as error:
        entry.fail(f"{class_name} cannot become a node: {describe_error(error, entry.path)}")
        return None


def _unique(node_id: str, taken: Mapping[str, Any]) -> str:
    candidate, number = node_id, 2
    while candidate in taken:
        candidate, number = f"{node_id}_{number}", number + 1
    return candidate


def load_entries(entries: Sequence[Entry], allowed: bool) -> list[type[io.ComfyNode]]:
    """Block nodes and error nodes for `entries`; with `allowed` False nothing is imported or made.
    Each entry loads on its own (a module of its own, ids only for the nodes it made), so a broken
    entry never disables another."""
    check_entries(entries)
    if not allowed:
        return []
    nodes: list[type[io.ComfyNode]] = []
    taken: dict[str, Path] = {}
    for entry in entries:
        if entry.state != BROKEN:
            nodes += load_entry(entry, taken)
    for entry in entries:  # error nodes last: their ids must not take a block's
        if entry.state == BROKEN:
            entry.error_node = _unique(error_node_id(entry.name), taken)
            taken[entry.error_node] = entry.path
            nodes.append(
                make_error_node(entry.error_node, entry.name, entry.category, entry.path, "; ".join(entry.reasons))
            )
    return nodes


def register_folder() -> list[str]:
    """Register `models/modular_blocks` as the first "modular_blocks" folder (ahead of, never instead of,
    the ones extra_model_paths.yaml added) and create it so users find it. Returns every folder to scan."""
    default = os.path.join(folder_paths.models_dir, FOLDER_NAME)
    folder_paths.add_model_folder_path(FOLDER_NAME, default, is_default=True)
    try:
        os.makedirs(default, exist_ok=True)
    except OSError as error:
        logger.info("Modular Diffusers: cannot create the custom blocks folder %s: %s", default, error)
    return folder_paths.get_folder_paths(FOLDER_NAME)


def log_outcome(entries: Sequence[Entry], allowed: bool, reason: str | None) -> None:
    """One line per broken entry when custom code runs; else one line for everything found."""
    if not allowed:
        if entries:
            logger.warning(
                "Modular Diffusers: %d custom block(s) found and not loaded (%s): %s; status: GET /api%s",
                len(entries),
                reason,
                ", ".join(
                    f"{entry.name} ({entry.path}{', broken: ' + '; '.join(entry.reasons) if entry.reasons else ''})"
                    for entry in entries
                ),
                STATUS_ROUTE,
            )
        return
    for entry in entries:
        if entry.state == BROKEN:
            logger.warning(
                "Modular Diffusers: custom block '%s' (%s) failed to load: %s; shown as the node %s",
                entry.name,
                entry.path,
                "; ".join(entry.reasons),
                entry.error_node,
            )
    loaded = [entry for entry in entries if entry.nodes]
    if loaded:
        logger.info(
            "Modular Diffusers: custom code allowed (%s); %d custom block node(s) from %s",
            ALLOW_ENV,
            sum(len(entry.nodes) for entry in loaded),
            ", ".join(f"{entry.name} ({entry.path})" for entry in loaded),
        )


def custom_block_nodes(environ: Mapping[str, str] | None = None) -> tuple[list[type[io.ComfyNode]], dict[str, Any]]:
    """Scan the custom-blocks folders and make their nodes (ComfyUI's start-up: `get_node_list`), with
    the status the status route answers: the folders scanned, the policy, and every entry.
    Never raises: a problem here must not keep the pack's other nodes from loading."""
    allowed, reason = custom_code_policy(environ)
    try:
        folders = register_folder()
        entries = find_entries(folders)
        nodes = load_entries(entries, allowed)
        log_outcome(entries, allowed, reason)
    except Exception as error:  # a bug of this module, not of a block: never the whole pack
        logger.error("Modular Diffusers: scanning the custom blocks folders failed: %s", one_line(repr(error)))
        return [], {**NOT_SCANNED, "custom_code_allowed": allowed, "reason": repr(error)}
    status = {
        "folders": [str(folder) for folder in folders],
        "custom_code_allowed": allowed,
        "reason": reason,
        "entries": [entry.status() for entry in entries],
    }
    return nodes, status


__all__ = ["NOT_SCANNED", "STATUS_ROUTE", "custom_block_nodes", "custom_code_policy", "find_entries"]
