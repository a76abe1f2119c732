"""Another custom-node pack builds on this one: tests/fixtures/second_pack registers its own diffusers
blocks as nodes through this pack's adapter (api.py, docs/other-packs.md).

A real ComfyUI loads both packs, once in each order: the base directory's custom_nodes/ holds this pack,
an extra custom_nodes folder (extra_model_paths yaml) the second pack, scanned after the base folder or,
with `is_default: true`, before it. In both orders the second pack's nodes are its own (`python_module`),
this pack's nodes, routes and the second pack's nodes come from one copy of this pack, and a prompt in
which the second pack's nodes sit between this pack's SDXL nodes gives exactly the image of the same
blocks run in a plain diffusers pipeline.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_harness import PACK_DIR_NAME, REPO, TRACEBACK_START, load_api_workflow, pack_load_problems
from helpers import start_server
from PIL import Image

SECOND_PACK = REPO / "tests" / "fixtures" / "second_pack"
SECOND_DIR_NAME = "mdiff-second-pack"
SECOND_NODES = ("SecondPack_ScaleLatents", "SecondPack_LatentOffset")
PACKAGE = "comfyui_modular_diffusers"
HANDED_OVER = "was loaded first by another pack; using that copy"
IGNORED_COPY = "Modular Diffusers: ignoring the copy"
MODULES_ROUTE = "/api/second_pack/modules"
LOADED_MODELS = "/api/modular_diffusers/loaded_models"

PROMPT = "a photo of a red fox in the snow"
NEGATIVE = "blurry, low quality"
STEPS, SEED, SCALE, OFFSET = 4, 42, 0.5, 0.25


def second_pack_blocks():
    """The second pack's blocks module, imported on its own (plain diffusers, no ComfyUI)."""
    spec = importlib.util.spec_from_file_location("second_pack_blocks", SECOND_PACK / "blocks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def comfy_quantize(image: np.ndarray) -> np.ndarray:
    """What SaveImage does to a float image before writing the PNG."""
    return np.clip(255.0 * image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=["pack_first", "second_pack_first"])
def two_packs(request, tmp_path_factory, tiny_model):
    """(server, whether the second pack loaded first)."""
    second_first = request.param == "second_pack_first"
    root = tmp_path_factory.mktemp(request.param)
    extra = root / "extra_custom_nodes"
    extra.mkdir()
    (extra / SECOND_DIR_NAME).symlink_to(SECOND_PACK, target_is_directory=True)
    paths = root / "extra_paths.yaml"
    paths.write_text(f"second_pack:\n    custom_nodes: {extra}\n" + ("    is_default: true\n" if second_first else ""))
    server = start_server(root / "base", tiny_model, ["--extra-model-paths-config", str(paths)])
    yield server, second_first
    server.stop()


@pytest.fixture(scope="module")
def reference(tiny_model) -> tuple[np.ndarray, np.ndarray]:
    """SDXL text-to-image in a plain diffusers pipeline whose blocks are SDXL's with the second pack's two
    blocks inserted before the decoder: (the image with SCALE and OFFSET, the image with the defaults)."""
    from diffusers import ModularPipeline

    blocks_module = second_pack_blocks()
    blocks = ModularPipeline.from_pretrained(str(tiny_model)).blocks
    decode = list(blocks.sub_blocks).index("decode")
    blocks.sub_blocks.insert("scale_latents", blocks_module.ScaleLatents(), decode)
    blocks.sub_blocks.insert("latent_offset", blocks_module.LatentOffset(), decode + 1)
    pipe = blocks.init_pipeline(str(tiny_model))
    pipe.load_components(dtype=torch.float32)

    def image(**extra: float) -> np.ndarray:
        generator = torch.Generator().manual_seed(SEED)
        images = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, generator=generator,
                      output_type="np", output="images", **extra)  # fmt: skip
        return comfy_quantize(images[0])

    return image(latent_scale=SCALE, latent_offset=OFFSET), image()


def pack_module_name(server) -> str:
    """The name ComfyUI registers this pack's folder under in sys.modules (its path)."""
    return str(server.base / "custom_nodes" / PACK_DIR_NAME).replace(".", "_x_")


def test_both_packs_load_once_in_either_order(two_packs):
    server, second_first = two_packs
    client = server.client()
    log = server.log()
    second_folder = Path(server.base.parent / "extra_custom_nodes" / SECOND_DIR_NAME)
    assert pack_load_problems(log, second_folder, source_root=SECOND_PACK) == []
    assert TRACEBACK_START not in log
    assert IGNORED_COPY not in log
    # The order: ComfyUI lists nodes in the order it registered them, pack by pack.
    info = client.get("/api/object_info")
    ids = list(info)
    first_ours = next(i for i, node in enumerate(ids) if node.startswith("MDiff_"))
    assert (ids.index(SECOND_NODES[0]) < first_ours) == second_first
    # Loaded first, the second pack imported this pack under its stable name, and ComfyUI's own load
    # of the folder then handed over to that module; loaded second, it used ComfyUI's module.
    serving = PACKAGE if second_first else pack_module_name(server)
    modules = client.get(MODULES_ROUTE)
    assert modules["api"] == f"{serving}.api"
    # Every node class of both packs comes from that one copy of this pack's code ...
    assert set(SECOND_NODES) < set(modules["node_modules"])
    assert len(modules["node_modules"]) > 100  # the catalog is there
    assert {name for name in modules["node_modules"].values() if not name.startswith(serving + ".")} == set()
    assert log.count(HANDED_OVER) == (1 if second_first else 0)
    # ... and each pack's nodes are shown as its own.
    python_modules = {node: data["python_module"] for node, data in info.items()}
    assert {python_modules[node] for node in SECOND_NODES} == {f"custom_nodes.{SECOND_DIR_NAME}"}
    assert {module for node, module in python_modules.items() if node.startswith("MDiff_")} == {
        f"custom_nodes.{PACK_DIR_NAME}"
    }
    # The second pack's own widget rule (NameRule) and the components socket of a block with a component.
    scale = info["SecondPack_ScaleLatents"]["input"]
    assert scale["optional"]["latent_scale"][0] == "FLOAT"
    assert scale["optional"]["latent_scale"][1]["max"] == 4.0
    offset = info["SecondPack_LatentOffset"]["input"]
    assert offset["required"]["components"][0] == "MDIFF_COMPONENTS"
    assert info["SecondPack_LatentOffset"]["output"] == ["MDIFF_STATE", "MDIFF_TENSOR"]


def second_pack_between(prefix: str) -> dict:
    """SDXL text to image with the second pack's nodes between Denoise and the decoder, wired by the state
    and by the latents sockets."""
    prompt = copy.deepcopy(load_api_workflow("sdxl_text2image"))
    prompt["3"]["inputs"].update(num_inference_steps=STEPS, seed=SEED)
    prompt["5"]["inputs"]["filename_prefix"] = prefix
    prompt["6"] = {
        "class_type": "SecondPack_ScaleLatents",
        "inputs": {"state": ["3", 0], "latents": ["3", 1], "latent_scale": SCALE},
    }
    prompt["7"] = {
        "class_type": "SecondPack_LatentOffset",
        "inputs": {"state": ["6", 0], "components": ["1", 0], "latents": ["6", 1], "latent_offset": OFFSET},
    }
    prompt["4"]["inputs"].update(state=["7", 0], latents=["7", 1])
    return prompt


def test_second_pack_nodes_between_sdxl_nodes_match_diffusers(two_packs, reference):
    server, second_first = two_packs
    client = server.client()
    run = client.run(second_pack_between(f"between_{second_first}"))
    assert run.status == "success", run.error() or run.history.get("status")
    saved = run.output("5")["images"][0]
    image = np.asarray(Image.open(server.base / "output" / saved["subfolder"] / saved["filename"]).convert("RGB"))
    with_blocks, plain = reference
    assert not np.array_equal(with_blocks, plain)  # the two blocks change the image
    assert np.array_equal(image, with_blocks)
    # The loader's models are the models of the copy that serves the routes.
    assert any(model["managed_by_pack"] for model in client.get(LOADED_MODELS)["models"])
