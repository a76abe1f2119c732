"""Custom blocks from models/modular_blocks (and an extra_model_paths.yaml folder) through real ComfyUI servers.

Three servers, each started once: custom code allowed (good and broken blocks, a second folder from
--extra-model-paths-config), custom code not allowed, and allowed but switched off by diffusers'
DIFFUSERS_DISABLE_REMOTE_CODE. The blocks are real block files under tests/fixtures/; each good one
appends its name to $MDIFF_TEST_IMPORT_LOG when its code runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import open_frontend
from comfy_harness import ComfyServer
from diffusers import AutoencoderKL
from helpers import QUEUE_JS, assert_counts_every_step, comfy_quantize, prepare_base, saved_image, wait_for_history
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STATUS = "/api/modular_diffusers/custom_blocks"
# Written by the test, not kept in the repository: the repository's lint must pass.
BROKEN_SYNTAX = (
    "from diffusers.modular_pipelines import ModularPipelineBlocks\n\n\nclass Oops(ModularPipelineBlocks)\n"
)

GOOD = {
    "MDiff_Custom_vae_roundtrip_VaeRoundTrip": "vae_roundtrip",
    "MDiff_Custom_step_loop_FadeStep": "step_loop",
    "MDiff_Custom_step_loop_FadeLoop": "step_loop",
    "MDiff_Custom_image_tools_Posterize": "image_tools",
    "MDiff_Custom_broken_inputs_StillWorks": "broken_inputs",
    "MDiff_Custom_extra_tools_MultiplyNumbers": "extra_tools",
    "MDiff_Custom_hub_offset_OffsetNumber": "hub_offset",
}
# entry -> (kind, a part of its reason)
BROKEN = {
    "broken_syntax": ("module", "SyntaxError: expected ':' (broken_syntax.py, line 4)"),
    "broken_import": ("diffusers custom block", "No module named 'mdiff_package_that_is_not_installed'"),
    "broken_config": ("diffusers custom block", "NotInTheFile"),
    "broken_inputs": ("module", "InputsRaise cannot become a node: RuntimeError: inputs are not ready"),
    "broken_node": ("module", "StateInput cannot become a node: ValueError: block StateInput: input names ['state']"),
    "broken_exit": ("module", "SystemExit: this block calls sys.exit at import (broken_exit.py, line 5)"),
    "no_blocks_defined": ("module", "defines no ModularPipelineBlocks subclass of its own"),
    "no_block": ("not a block", "neither modular_config.json"),
    # block.py + utils.py, like hub_offset/ (which sorts after it and must still load)
    "hub_broken": ("diffusers custom block", "RuntimeError: this block is broken at import (block.py, line 8)"),
}
FOUND_IN_MAIN = ["vae_roundtrip", "step_loop", "image_tools", "hub_offset", *BROKEN]


def fill_blocks_folder(folder: Path) -> None:
    shutil.copytree(FIXTURES / "modular_blocks", folder, dirs_exist_ok=True)
    (folder / "broken_syntax.py").write_text(BROKEN_SYNTAX)
    (folder / ".hidden_block.py").write_text(BROKEN_SYNTAX)  # hidden: never an entry
    (folder / "__pycache__").mkdir(exist_ok=True)


def start_custom_server(
    base: Path, tiny_model: Path, env: dict[str, str], main_blocks: bool = True, extra: bool = True
) -> ComfyServer:
    """A server like helpers' `start_server` (the tiny models, ComfyUI's example image), with custom
    blocks in models/modular_blocks (`main_blocks`) and/or a second folder named by an extra paths yaml."""
    prepare_base(base, tiny_model)
    if main_blocks:
        fill_blocks_folder(base / "models" / "modular_blocks")
    extra_args = []
    if extra:
        shutil.copytree(FIXTURES / "modular_blocks_extra", base / "more" / "extra_blocks")
        if not main_blocks:
            fill_blocks_folder(base / "more" / "extra_blocks")
        yaml = base / "extra_model_paths.yaml"
        yaml.write_text(f"custom_block_tests:\n    base_path: {base / 'more'}\n    modular_blocks: extra_blocks/\n")
        extra_args = ["--extra-model-paths-config", str(yaml)]
    server_env = {
        "OMP_NUM_THREADS": "1",
        "HF_MODULES_CACHE": str(base / "hf_modules"),  # where diffusers copies custom-format block files
        "MDIFF_TEST_IMPORT_LOG": str(base / "imported.txt"),
        "MDIFF_ALLOW_CUSTOM_CODE": "",
        "DIFFUSERS_DISABLE_REMOTE_CODE": "",
        **env,
    }
    return ComfyServer(base, extra_args=extra_args, env=server_env).start()


@pytest.fixture(scope="module")
def custom_server(tmp_path_factory, tiny_model):
    comfy = start_custom_server(tmp_path_factory.mktemp("custom-blocks"), tiny_model, {"MDIFF_ALLOW_CUSTOM_CODE": "1"})
    yield comfy
    comfy.stop()


@pytest.fixture
def custom_client(custom_server):
    return custom_server.client()


def example_image(server: ComfyServer) -> Image.Image:
    return Image.open(server.base / "input" / "example.png").convert("RGB")


def custom_ids(client) -> set[str]:
    return {name for name in client.get("/api/object_info") if name.startswith("MDiff_Custom_")}


def test_good_blocks_become_nodes(custom_client, custom_server):
    assert custom_ids(custom_client) == set(GOOD) | {f"MDiff_Custom_{name}_LoadError" for name in BROKEN}
    for node_id, folder in GOOD.items():
        info = custom_client.object_info(node_id)
        assert info["category"] == f"Modular Diffusers/Custom/{folder}"
    vae = custom_client.object_info("MDiff_Custom_vae_roundtrip_VaeRoundTrip")
    assert vae["display_name"] == "Vae Round Trip"
    assert vae["description"] == "Encodes an image with the model's VAE and decodes the latents again."
    assert vae["input"]["required"]["components"][0] == "MDIFF_COMPONENTS"
    assert vae["input"]["optional"]["image"][0] == "IMAGE"
    assert vae["input"]["optional"]["size"][1]["default"] == 64
    assert vae["output_name"] == ["state", "image_latents", "images"]
    loop = custom_client.object_info("MDiff_Custom_step_loop_FadeLoop")
    assert loop["input"]["optional"]["num_steps"][1]["default"] == 4 and "rate" in loop["input"]["optional"]
    imported = (custom_server.base / "imported.txt").read_text().split()
    assert sorted(imported) == ["hub_offset", "image_tools", "step_loop", "vae_roundtrip"]


def test_block_with_components_matches_diffusers(custom_client, custom_server, tiny_model):
    """(a) diffusers' custom-block format, a `vae` component from Load Diffusers Components, an image from
    core Load Image."""
    prompt = {
        "1": {"class_type": "MDiff_LoadComponents", "inputs": {"model": "tiny-sdxl", "dtype": "float32"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {
            "class_type": "MDiff_Custom_vae_roundtrip_VaeRoundTrip",
            "inputs": {"components": ["1", 0], "image": ["2", 0], "size": 48, "latent_scale": 0.8},
        },
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 2], "filename_prefix": "roundtrip"}},
        "5": {"class_type": "MDiff_ShowState", "inputs": {"state": ["3", 0]}},
    }
    run = custom_client.run(prompt)
    result = saved_image(custom_server, run, "4")
    assert run.output("5")["state"][0]["image_latents"]["shape"] == [1, 4, 24, 24]

    vae = AutoencoderKL.from_pretrained(tiny_model / "vae", torch_dtype=torch.float32)
    image = example_image(custom_server).resize((48, 48), Image.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        decoded = vae.decode(vae.encode(pixels).latent_dist.mode() * 0.8).sample
    reference = (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()[0]
    assert result.shape == (48, 48, 3)
    assert np.array_equal(comfy_quantize(reference), result)


def test_loop_block_reports_progress(custom_client, custom_server):
    """(b) a LoopSequentialPipelineBlocks from a plain module: one progress step per iteration."""
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {
            "class_type": "MDiff_Custom_step_loop_FadeLoop",
            "inputs": {"image": ["1", 0], "num_steps": 6, "target": 0.2, "rate": 0.3},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 1], "filename_prefix": "fade"}},
    }
    run = custom_client.run(prompt)
    result = saved_image(custom_server, run, "3")
    assert_counts_every_step([m for m in run.events("progress") if m["node"] == "2"], 6)
    pixels = torch.from_numpy(np.asarray(example_image(custom_server), dtype=np.float32) / 255.0)
    for _ in range(6):
        pixels = pixels + (0.2 - pixels) * 0.3
    assert np.array_equal(result, comfy_quantize(pixels.numpy()))


def test_package_block_takes_an_image_from_load_image(custom_client, custom_server):
    """(c) a package (relative import of its helper) with an IMAGE input fed by core Load Image."""
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "MDiff_Custom_image_tools_Posterize", "inputs": {"image": ["1", 0], "levels": 3}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 1], "filename_prefix": "posterized"}},
    }
    result = saved_image(custom_server, custom_client.run(prompt), "3")
    source = np.asarray(example_image(custom_server), dtype=np.float32) / 255.0
    expected = np.round(np.round(source * 2) / 2 * 255).astype(np.uint8)
    assert np.array_equal(result, expected)
    assert set(np.unique(result)) <= {0, 128, 255}


def test_block_from_the_extra_paths_folder(custom_client, custom_server):
    status = custom_client.get(STATUS)
    assert status["folders"] == [
        str(custom_server.base / "models" / "modular_blocks"),
        str(custom_server.base / "more" / "extra_blocks"),
    ]
    (extra,) = [entry for entry in status["entries"] if entry["root"] == status["folders"][1]]
    assert extra["folder"] == "extra_tools" and extra["state"] == "loaded"
    prompt = {
        "1": {"class_type": "MDiff_Custom_extra_tools_MultiplyNumbers", "inputs": {"a": 1.5, "b": 4.0}},
        "2": {"class_type": "MDiff_Custom_broken_inputs_StillWorks", "inputs": {"state": ["1", 0], "number": 2.25}},
        "3": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
    }
    run = custom_client.run(prompt)
    assert run.status == "success", run.error()
    state = run.output("3")["state"][0]
    assert state["product"] == {"type": "float", "value": 6.0} and state["doubled"]["value"] == 4.5


def test_broken_blocks_disable_only_themselves(custom_client, custom_server):
    status = custom_client.get(STATUS)
    assert status["custom_code_allowed"] is True and status["reason"] is None
    entries = {entry["folder"]: entry for entry in status["entries"]}
    assert list(entries) == [*sorted(FOUND_IN_MAIN), "extra_tools"]  # no hidden entry, no __pycache__
    log = custom_server.log().splitlines()
    for name, (kind, reason) in BROKEN.items():
        entry = entries[name]
        assert (entry["kind"], entry["state"]) == (kind, "broken"), entry
        assert reason in entry["reason"], entry
        assert entry["error_node"] == f"MDiff_Custom_{name}_LoadError"
        assert entry["nodes"] == (["MDiff_Custom_broken_inputs_StillWorks"] if name == "broken_inputs" else [])
        lines = [line for line in log if f"custom block '{name}'" in line]
        assert len(lines) == 1 and "failed to load" in lines[0] and reason in lines[0], lines
        assert entry["path"] in lines[0]
        info = custom_client.object_info(entry["error_node"])
        assert info["display_name"] == f"{name}: failed to load"
        assert info["category"] == f"Modular Diffusers/Custom/{name}" and reason in info["description"]
    for name in ("vae_roundtrip", "step_loop", "image_tools", "hub_offset"):
        assert entries[name]["state"] == "loaded" and entries[name]["reason"] is None
    assert entries["vae_roundtrip"]["kind"] == "diffusers custom block" and entries["image_tools"]["kind"] == "package"

    run = custom_client.run({"1": {"class_type": "MDiff_Custom_broken_node_LoadError", "inputs": {}}})
    assert run.status == "error"
    assert "input names ['state']" in run.error()["exception_message"]
    builtin = custom_client.run(
        {
            "1": {"class_type": "MDiff_ExampleLoop", "inputs": {"num_steps": 3, "x": 1}},
            "2": {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}},
        }
    )
    assert builtin.status == "success" and builtin.output("2")["state"][0]["x"]["value"] == 4


def test_the_canvas_warns_about_broken_blocks(custom_server):
    page = open_frontend(custom_server.url)
    try:
        text = page.wait_for(
            "[...document.querySelectorAll('.p-toast-message')].map((e) => e.innerText).join('\\n') || null",
            timeout=15,
            what="the custom blocks toast",
        )
    finally:
        page.close()
    assert f"{len(BROKEN)} custom blocks failed to load" in text
    assert "broken_exit: SystemExit" in text


def assert_nothing_imported(server: ComfyServer) -> None:
    assert not (server.base / "imported.txt").exists()
    assert not list(server.base.glob("hf_modules/**/*block*.py"))  # diffusers copied no block file
    assert custom_ids(server.client()) == set()


def run_builtin_node(server: ComfyServer) -> None:
    run = server.client().run(
        {
            "1": {"class_type": "MDiff_ExampleLoop", "inputs": {"num_steps": 2, "x": 0}},
            "2": {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}},
        }
    )
    assert run.status == "success" and run.output("2")["state"][0]["x"]["value"] == 2


def test_without_the_opt_in_nothing_runs(tmp_path, tiny_model):
    server = start_custom_server(tmp_path / "base", tiny_model, {}, extra=False)
    try:
        assert_nothing_imported(server)
        status = server.client().get(STATUS)
        lines = [line for line in server.log().splitlines() if "not loaded" in line]
        run_builtin_node(server)
    finally:
        server.stop()
    assert status["custom_code_allowed"] is False and "MDIFF_ALLOW_CUSTOM_CODE=1" in status["reason"]
    assert status["folders"] == [str(server.base / "models" / "modular_blocks")]
    states = {entry["folder"]: entry["state"] for entry in status["entries"]}
    assert states == {name: "broken" if name == "no_block" else "not allowed" for name in FOUND_IN_MAIN}
    assert all(entry["nodes"] == [] and entry["error_node"] is None for entry in status["entries"])
    assert len(lines) == 1 and "MDIFF_ALLOW_CUSTOM_CODE=1" in lines[0], lines
    assert all(f"{name} (" in lines[0] for name in FOUND_IN_MAIN)


def test_kill_switch_wins_over_the_opt_in(tmp_path, tiny_model):
    env = {"MDIFF_ALLOW_CUSTOM_CODE": "1", "DIFFUSERS_DISABLE_REMOTE_CODE": "1"}
    server = start_custom_server(tmp_path / "base", tiny_model, env, main_blocks=False)
    try:
        assert_nothing_imported(server)
        status = server.client().get(STATUS)
        run_builtin_node(server)
    finally:
        server.stop()
    default = server.base / "models" / "modular_blocks"
    assert default.is_dir()  # created by the pack, so users find it
    assert status["folders"] == [str(default), str(server.base / "more" / "extra_blocks")]
    assert status["custom_code_allowed"] is False and "DIFFUSERS_DISABLE_REMOTE_CODE" in status["reason"]
    assert {entry["state"] for entry in status["entries"] if entry["folder"] != "no_block"} == {"not allowed"}
    assert len(status["entries"]) == len(FOUND_IN_MAIN) + 1
    assert all(entry["root"] == status["folders"][1] for entry in status["entries"])


def offset_number(**inputs) -> dict:
    return {
        "1": {"class_type": "MDiff_Custom_hub_offset_OffsetNumber", "inputs": inputs},
        "2": {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}},
    }


def result_of(run) -> float:
    assert run.status == "success", run.error()
    return run.output("2")["state"][0]["result"]["value"]


def test_hub_blocks_whose_files_share_names_each_load(custom_client):
    """hub_broken/ and hub_offset/ both hold block.py and utils.py; the broken one sorts first."""
    entries = {entry["folder"]: entry for entry in custom_client.get(STATUS)["entries"]}
    assert entries["hub_broken"]["state"] == "broken" and entries["hub_offset"]["state"] == "loaded"
    # hub_offset's own utils.py runs (hub_broken's raises): (1 + 2) * 3
    assert result_of(custom_client.run(offset_number(number=1.0, offset=2, scale=3.0, mode="multiply"))) == 9.0


def test_a_typed_optional_input_and_mellon_hints(custom_client):
    info = custom_client.object_info("MDiff_Custom_hub_offset_OffsetNumber")["input"]["optional"]
    assert info["offset"] == ["INT", {"forceInput": True, "tooltip": "Added first; unset: none."}]
    assert (
        info["scale"][1] | {"default": 1.0, "min": 0.0, "max": 4.0, "step": 0.25, "display": "slider"}
        == info["scale"][1]
    )
    assert info["mode"][0] == "COMBO" and info["mode"][1]["options"] == ["add", "multiply"]
    assert result_of(custom_client.run(offset_number(number=1.0, offset=5))) == 7.0  # over the API: a literal
    assert result_of(custom_client.run(offset_number(number=1.0))) == 2.0  # unset: the block's None
    linked = offset_number(number=1.0, offset=["3", 0])
    linked["3"] = {"class_type": "PrimitiveInt", "inputs": {"value": 4}}
    assert result_of(custom_client.run(linked)) == 6.0
    refused = custom_client.run(offset_number(mode="divide"))
    assert (
        refused.status == "error"
        and "input 'mode' is 'divide'; give one of ['add', 'multiply']" in (refused.error()["exception_message"])
    )


OFFSET_CANVAS_JS = """
(() => {
  app.graph.clear();
  const number = LiteGraph.createNode("PrimitiveInt");
  const block = LiteGraph.createNode("MDiff_Custom_hub_offset_OffsetNumber");
  const show = LiteGraph.createNode("MDiff_ShowState");
  for (const node of [number, block, show]) app.graph.add(node);
  number.widgets.find((w) => w.name === "value").value = 6;
  number.widgets.find((w) => w.name === "control_after_generate").value = "fixed";
  block.widgets.find((w) => w.name === "mode").value = "multiply";
  block.widgets.find((w) => w.name === "scale").value = 0.5;
  number.connect(0, block, block.findInputSlot("offset"));
  block.connect(0, show, 0);
  return { show: show.id, slider: block.widgets.find((w) => w.name === "scale").options };
})()
"""


def test_the_typed_optional_input_is_settable_from_the_canvas(custom_server):
    with open_frontend(custom_server.url) as page:
        built = page.evaluate(OFFSET_CANVAS_JS)
        answer = page.evaluate(QUEUE_JS)
    assert answer and not answer.get("node_errors"), answer
    entry = wait_for_history(custom_server.client(), answer["prompt_id"])
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"][str(built["show"])]["state"][0]["result"]["value"] == 3.5  # (1 + 6) * 0.5
    assert built["slider"]["min"] == 0 and built["slider"]["max"] == 4
