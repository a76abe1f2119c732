"""The pure parts of the custom-blocks folder (nodes/custom_blocks.py), in-process: opt-in parsing, names,
which entries a folder has, what is wrong with them before any code runs, and loading real block files.
tests/test_custom_blocks_server.py runs the same through a real ComfyUI server."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from comfy_harness import REPO
from comfyui_modular_diffusers.nodes import custom_blocks as cb
from comfyui_modular_diffusers.nodes.custom_errors import CustomBlockLoadError, describe_error
from comfyui_modular_diffusers.nodes.custom_import import MODULE_PREFIX
from diffusers.modular_pipelines import PipelineState

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "modular_blocks"

GOOD_MODULE = """
from diffusers.modular_pipelines import InputParam, ModularPipelineBlocks, OutputParam
from diffusers.modular_pipelines import SequentialPipelineBlocks  # imported: not a block of this module


class _Base(ModularPipelineBlocks):
    pass


class AddOne(ModularPipelineBlocks):
    @property
    def description(self):
        return "Adds one."

    @property
    def inputs(self):
        return [InputParam("number", type_hint=int, default=1)]

    @property
    def intermediate_outputs(self):
        return [OutputParam("number", type_hint=int)]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        block_state.number += 1
        self.set_block_state(state, block_state)
        return components, state
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("TRUE", True), (" Yes ", True), ("on", True), ("On", True)]
    + [(None, False), ("", False), ("0", False), ("false", False), ("no", False), ("off", False), ("2", False)],
)
def test_env_flag(value, expected):
    assert cb.env_flag(value) is expected


def test_opt_in_and_kill_switch():
    assert cb.custom_code_policy({}) == (False, cb.custom_code_policy({})[1])
    allowed, reason = cb.custom_code_policy({})
    assert not allowed and "MDIFF_ALLOW_CUSTOM_CODE=1" in reason
    assert cb.custom_code_policy({"MDIFF_ALLOW_CUSTOM_CODE": "yes"}) == (True, None)
    assert cb.custom_code_policy({"MDIFF_ALLOW_CUSTOM_CODE": "1", "DIFFUSERS_DISABLE_REMOTE_CODE": "false"})[0]
    allowed, reason = cb.custom_code_policy({"MDIFF_ALLOW_CUSTOM_CODE": "1", "DIFFUSERS_DISABLE_REMOTE_CODE": "ON"})
    assert not allowed and "DIFFUSERS_DISABLE_REMOTE_CODE" in reason


def test_ids():
    assert cb.block_node_id("my-blocks", "VaeRoundTrip") == "MDiff_Custom_my_blocks_VaeRoundTrip"
    assert cb.error_node_id("my-blocks") == "MDiff_Custom_my_blocks_LoadError"


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_find_entries(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "plain.py")
    write(first / "pkg" / "__init__.py")
    write(first / "fmt" / "modular_config.json", "{}")
    write(first / "fmt" / "__init__.py")  # the custom-block format wins
    (first / "empty").mkdir()
    write(first / ".hidden.py")
    write(first / ".hidden_dir" / "__init__.py")
    write(first / "__pycache__" / "plain.cpython-311.pyc")
    write(first / "README.md")
    write(second / "other.py")
    entries = cb.find_entries([first, tmp_path / "missing", second, str(first)])
    found = [(e.name, e.kind, e.root) for e in entries]
    assert found == [
        ("empty", cb.NOT_A_BLOCK, first),
        ("fmt", cb.CUSTOM_FORMAT, first),
        ("pkg", cb.PACKAGE_ENTRY, first),
        ("plain", cb.MODULE, first),
        ("other", cb.MODULE, second),
    ]
    assert entries[3].path == first / "plain.py" and entries[2].path == first / "pkg"


def test_checks_before_any_code_runs(tmp_path):
    write(tmp_path / "a" / "same.py", "raise SystemExit('must not run')")
    write(tmp_path / "b" / "same" / "__init__.py", "raise SystemExit('must not run')")
    (tmp_path / "a" / "nothing").mkdir()
    entries = {(e.root.name, e.name): e for e in cb.find_entries([tmp_path / "a", tmp_path / "b"])}
    assert cb.load_entries(list(entries.values()), allowed=False) == []
    assert entries["a", "same"].state == entries["b", "same"].state == cb.NOT_ALLOWED
    assert entries["a", "nothing"].state == cb.BROKEN and "modular_config.json" in entries["a", "nothing"].reasons[0]
    assert not any(name.startswith(MODULE_PREFIX + "same") for name in sys.modules)


def load(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, cb.Entry], dict[str, type]]:
    root = tmp_path / "blocks"
    for name, text in files.items():
        write(root / name, text)
    entries = cb.find_entries([root])
    nodes = cb.load_entries(entries, allowed=True)
    return {entry.name: entry for entry in entries}, {node.GET_SCHEMA().node_id: node for node in nodes}


def test_a_module_becomes_nodes_and_broken_ones_only_disable_themselves(tmp_path):
    marker = tmp_path / "imported"
    entries, nodes = load(
        tmp_path,
        {
            "ut_good.py": GOOD_MODULE,
            "ut_pkg/__init__.py": "from .inner import Inner\n",
            "ut_pkg/inner.py": GOOD_MODULE.replace("AddOne", "Inner"),
            "ut_exit.py": f"open({str(marker)!r}, 'w').close()\nimport sys\nsys.exit(3)\n",
            "ut_syntax.py": "class Oops(\n",
            "ut_none.py": "from diffusers.modular_pipelines import ModularPipelineBlocks\n",
            "ut_raises.py": GOOD_MODULE.replace("return [InputParam", "raise KeyError('no inputs')  # [InputParam"),
        },
    )
    assert entries["ut_good"].state == cb.LOADED and entries["ut_good"].nodes == ["MDiff_Custom_ut_good_AddOne"]
    schema = nodes["MDiff_Custom_ut_good_AddOne"].GET_SCHEMA()
    assert schema.category == "Modular Diffusers/Custom/ut_good"
    assert schema.display_name == "Add One" and schema.description == "Adds one."
    _, number = nodes["MDiff_Custom_ut_good_AddOne"].RUN({"state": PipelineState(), "number": 41}, "n")
    assert number == 42
    assert entries["ut_pkg"].nodes == ["MDiff_Custom_ut_pkg_Inner"]  # a submodule's class counts as the package's

    assert marker.exists()  # the module ran, and its SystemExit was caught
    assert entries["ut_exit"].reasons == ["SystemExit: 3 (ut_exit.py, line 3)"]
    assert (
        entries["ut_syntax"].reasons[0].startswith("SyntaxError:")
        and "ut_syntax.py, line 1" in (entries["ut_syntax"].reasons[0])
    )
    assert "defines no ModularPipelineBlocks subclass" in entries["ut_none"].reasons[0]
    reason = entries["ut_raises"].reasons[0]
    assert reason.startswith("AddOne cannot become a node: KeyError: 'no inputs' (ut_raises.py, line "), reason
    for name in ("ut_exit", "ut_syntax", "ut_none", "ut_raises"):
        entry = entries[name]
        assert entry.state == cb.BROKEN and entry.nodes == [] and entry.error_node == f"MDiff_Custom_{name}_LoadError"
        error_node = nodes[entry.error_node]
        schema = error_node.GET_SCHEMA()
        assert schema.display_name == f"{name}: failed to load" and schema.category == entry.category
        assert entry.reasons[0] in schema.description
        with pytest.raises(CustomBlockLoadError, match=re.escape(entry.reasons[0])):
            error_node.execute()
    assert not any(key.startswith(MODULE_PREFIX + "ut_syntax") for key in sys.modules)
    status = entries["ut_raises"].status()
    assert status["state"] == "broken" and status["reason"] == reason and status["kind"] == "module"


def test_a_failing_class_leaves_the_modules_other_blocks(tmp_path):
    entries, nodes = load(tmp_path, {"ut_mixed.py": (FIXTURES / "broken_inputs.py").read_text()})
    entry = entries["ut_mixed"]
    assert entry.nodes == ["MDiff_Custom_ut_mixed_StillWorks"]
    assert (
        entry.state == cb.BROKEN
        and "InputsRaise cannot become a node: RuntimeError: inputs are not ready" in (entry.reasons[0])
    )
    assert set(nodes) == {"MDiff_Custom_ut_mixed_StillWorks", "MDiff_Custom_ut_mixed_LoadError"}


def test_describe_error_names_the_users_line(tmp_path):
    path = write(tmp_path / "user.py", "def f():\n    return 1 / 0\n")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(ZeroDivisionError) as caught:
        namespace["f"]()
    assert describe_error(caught.value, tmp_path) == "ZeroDivisionError: division by zero (user.py, line 2)"
    assert describe_error(ValueError("a\n  b"), tmp_path) == "ValueError: a b"


def test_the_readme_example_is_a_loadable_custom_block(tmp_path):
    """The README's "Your own blocks" example, written out as its two files, becomes the node it describes."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own blocks", 1)[1].split("\n## ", 1)[0]
    files = dict(re.findall(r"`models/modular_blocks/(\S+?)`\n\n```\w+\n(.*?)```", section, re.S))
    assert set(files) == {"add_noise/add_noise.py", "add_noise/modular_config.json"}, list(files)
    for name, text in files.items():
        write(tmp_path / name, text)
    (entry,) = cb.find_entries([tmp_path])
    (node,) = cb.load_entries([entry], allowed=True)
    assert entry.kind == cb.CUSTOM_FORMAT and entry.state == cb.LOADED
    schema = node.GET_SCHEMA()
    assert schema.node_id == "MDiff_Custom_add_noise_AddNoise" and schema.node_id in section
    assert schema.display_name == "Add Noise" and f'"{schema.display_name}"' in section
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["latents"].io_type == "MDIFF_TENSOR" and inputs["latents"].optional
    assert inputs["scale"].default == 0.1 and inputs["scale"].tooltip == "noise strength"
    assert inputs["seed"].io_type == "INT" and "components" not in inputs
    state = PipelineState()
    state.set("latents", torch.zeros(1, 4, 2, 2))
    _, latents = node.RUN({"state": state, "seed": 3, "scale": 0.5}, "n")
    assert latents.abs().sum() > 0 and state.get("latents").abs().sum() == 0


HUB_BLOCK = """
from diffusers.modular_pipelines import InputParam, ModularPipelineBlocks, OutputParam

from .utils import amount


class {name}(ModularPipelineBlocks):
    @property
    def inputs(self):
        return [InputParam("number", type_hint=int, default=1), InputParam("offset", type_hint=int | None)]

    @property
    def intermediate_outputs(self):
        return [OutputParam("number", type_hint=int)]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        block_state.number += amount() + (block_state.offset or 0)
        self.set_block_state(state, block_state)
        return components, state
"""


def hub_folder(root: Path, folder: str, class_name: str, amount: int, broken: bool = False) -> None:
    """A folder in diffusers' custom-block format, as blocks shared on the Hub often are: block.py + utils.py."""
    write(root / folder / "modular_config.json", f'{{"auto_map": {{"ModularPipelineBlocks": "block.{class_name}"}}}}')
    write(root / folder / "block.py", HUB_BLOCK.format(name=class_name) + ("\nraise RuntimeError('oops')\n" * broken))
    write(root / folder / "utils.py", f"def amount():\n    return {amount}\n")


def test_folders_whose_files_have_the_same_names_each_load(tmp_path):
    root = tmp_path / "blocks"
    hub_folder(root, "a_broken", "Broken", 0, broken=True)  # sorts first
    hub_folder(root, "b_plus_ten", "PlusTen", 10)
    hub_folder(root, "c_plus_two", "PlusTwo", 2)
    entries = {entry.name: entry for entry in cb.find_entries([root])}
    nodes = {node.GET_SCHEMA().node_id: node for node in cb.load_entries(list(entries.values()), allowed=True)}
    assert (
        entries["a_broken"].state == cb.BROKEN
        and "RuntimeError: oops (block.py, line" in entries["a_broken"].reasons[0]
    )
    assert entries["b_plus_ten"].state == entries["c_plus_two"].state == cb.LOADED
    assert set(nodes) == {
        "MDiff_Custom_a_broken_LoadError",
        "MDiff_Custom_b_plus_ten_PlusTen",
        "MDiff_Custom_c_plus_two_PlusTwo",
    }
    # each folder runs its own block.py with its own utils.py
    assert nodes["MDiff_Custom_b_plus_ten_PlusTen"].RUN({"number": 1}, "n")[1] == 11
    assert nodes["MDiff_Custom_c_plus_two_PlusTwo"].RUN({"number": 1}, "n")[1] == 3


def test_a_broken_entry_never_takes_a_good_ones_ids(tmp_path):
    hub_folder(tmp_path / "first", "same", "PlusTen", 10, broken=True)
    hub_folder(tmp_path / "second", "same", "PlusTen", 10)
    hub_folder(tmp_path / "third", "same", "PlusTen", 10)
    broken, good, clash = cb.find_entries([tmp_path / "first", tmp_path / "second", tmp_path / "third"])
    nodes = cb.load_entries([broken, good, clash], allowed=True)
    assert good.state == cb.LOADED and good.nodes == ["MDiff_Custom_same_PlusTen"]
    assert broken.state == clash.state == cb.BROKEN
    assert f"is taken by {good.path}" in clash.reasons[0]
    assert {node.GET_SCHEMA().node_id for node in nodes} == {
        "MDiff_Custom_same_PlusTen",
        "MDiff_Custom_same_LoadError",
        "MDiff_Custom_same_LoadError_2",
    }


def test_a_typed_optional_input_of_a_users_block_is_reachable(tmp_path):
    hub_folder(tmp_path, "offset", "PlusTen", 10)
    (node,) = cb.load_entries(cb.find_entries([tmp_path]), allowed=True)
    offset = {i.id: i for i in node.GET_SCHEMA().inputs}["offset"]
    assert (offset.io_type, offset.optional, offset.force_input) == ("INT", True, True)
    assert node.RUN({"number": 1, "offset": 5}, "n")[1] == 16
    assert node.RUN({"number": 1}, "n")[1] == 11  # unset: the block's default (None)
