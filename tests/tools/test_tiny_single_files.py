"""The tiny single-file fixtures (scripts/tiny_single_files.py): written by ComfyUI's converters, read back by
diffusers' own single-file loading (no mocks) and compared with the tiny model folders' models.

Where diffusers 0.42.1 cannot read a tiny file, a strict xfail records why, and a second test reads the file
another independent way (diffusers' converter called directly, or ComfyUI's own Flux model):
- tiny-sdxl's checkpoint's text_encoder_2: diffusers tells CLIP-L from OpenCLIP-bigG by their width, and both
  tiny encoders are 32 wide, so it loads CLIP-L's weights into it and leaves its text_projection on the meta
  device (tiny-sdxl-bigg's checkpoint, whose text_encoder_2 is 48 wide, loads whole);
- BFL Flux (safetensors or GGUF): convert_flux_transformer_checkpoint_to_diffusers hardcodes FLUX.1's width
  (inner_dim = 3072) to split the single blocks' fused linear1; tiny-flux-3072's transformer, that wide, goes
  through it (bit-identical in BFL's layout, close as GGUF Q8_0);
- a UNet without `model.diffusion_model.` (ComfyUI's UNETLoader reads either): convert_ldm_unet_checkpoint keeps
  only the keys under that prefix.
Z-Image's original layout (safetensors, and GGUF Q8_0) is what diffusers reads in place of BFL Flux: its converter
takes every size from the checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from original_layouts import CLIP_L_LEVEL, comfy_modules, comfy_unet_config
from single_file_checks import (
    BFL,
    BFL_3072,
    CHECKPOINT,
    CHECKPOINTS,
    CONFIGS,
    FLUX,
    SDXL,
    SDXL_BIGG,
    UNET,
    VAE,
    Z_ORIGINAL,
    assert_same_weights,
    header_tensors,
)
from tiny_loras import build_tiny_loras
from tiny_single_files import (
    CLIP_G_PREFIX,
    FILES,
    LISTED_IN,
    SINGLE_FILE_MODELS,
    build_tiny_single_files,
    single_files_named_by,
)

logger = logging.getLogger(__name__)

CLIP_WIDTH = "diffusers picks the SDXL text encoders' weights by width, and both tiny CLIPs are 32 wide"
UNET_PREFIX = "diffusers' LDM UNet converter reads only keys under model.diffusion_model."


@pytest.fixture(scope="module")
def models_dir(tiny_models) -> Path:
    assert {tiny_models[name].parent for name in SINGLE_FILE_MODELS} == {tiny_models[SDXL].parent}
    return tiny_models[SDXL].parent


@pytest.fixture(scope="module")
def built(models_dir, tmp_path_factory) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("single_files")
    yield build_tiny_single_files(models_dir, out)
    shutil.rmtree(out, ignore_errors=True)  # 1.6 GB (tiny-flux-3072's); pytest keeps three sessions' tmp_path


@pytest.fixture(scope="module")
def sdxl_pipes(tiny_models) -> dict:
    from diffusers import StableDiffusionXLPipeline

    return {name: StableDiffusionXLPipeline.from_pretrained(str(tiny_models[name])) for name in (SDXL, SDXL_BIGG)}


@pytest.fixture(scope="module")
def sdxl(sdxl_pipes):
    return sdxl_pipes[SDXL]


@pytest.fixture(scope="module")
def flux(tiny_models):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel.from_pretrained(str(tiny_models[FLUX] / "transformer")).eval()


def test_single_file_models_are_the_ones_files_need():
    assert set(SINGLE_FILE_MODELS) == {model for model, _ in FILES.values() if model is not None}


def test_builds_every_file_byte_identical(built, models_dir, tmp_path):
    """The command, in another process with other string hashes (ComfyUI's key maps are sets), writes the same
    bytes; a second build keeps every file."""
    assert sorted(built) == sorted(FILES)
    script = Path(__file__).resolve().parents[2] / "scripts" / "tiny_single_files.py"
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    subprocess.run(
        [sys.executable, str(script), str(models_dir), str(tmp_path)], env=env, check=True, capture_output=True
    )
    for name, path in built.items():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        assert files, name
        for file in files:
            assert file.read_bytes() == (tmp_path / name / file.relative_to(path)).read_bytes(), file
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert build_tiny_single_files(models_dir, tmp_path) == {name: tmp_path / name for name in FILES}
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == mtimes
    shutil.rmtree(tmp_path)  # as `built`'s


@pytest.mark.parametrize("model", [SDXL, SDXL_BIGG])
def test_configs_folder_has_no_weights(built, tiny_models, model):
    configs = built[CONFIGS[model]]
    names = {p.relative_to(configs).as_posix() for p in configs.rglob("*") if p.is_file()}
    assert {"model_index.json", "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"} <= names
    assert {"text_encoder_2/config.json", "tokenizer/tokenizer.json", "tokenizer_2/tokenizer_config.json"} <= names
    assert not [name for name in names if name.endswith((".safetensors", ".bin"))]
    for name in names:
        assert (configs / name).read_bytes() == (tiny_models[model] / name).read_bytes(), name


@pytest.fixture(scope="module")
def checkpoint_pipe(built, tiny_models):
    """`checkpoint_pipe(model, config)`: the model's checkpoint by from_single_file with its full folder or its
    configs-only one, loaded once."""
    from diffusers import StableDiffusionXLPipeline

    loaded = {}

    def load(model: str, config: str):
        if (model, config) not in loaded:
            folder = tiny_models[model] if config == "folder" else built[CONFIGS[model]]
            loaded[model, config] = StableDiffusionXLPipeline.from_single_file(
                str(built[CHECKPOINTS[model]]), config=str(folder), local_files_only=True
            )
        return loaded[model, config]

    return load


def _checkpoint_cases() -> list:
    clip_width = pytest.mark.xfail(strict=True, raises=AssertionError, reason=CLIP_WIDTH)
    return [
        pytest.param(
            model, config, component, marks=clip_width if (model, component) == (SDXL, "text_encoder_2") else ()
        )
        for model in (SDXL, SDXL_BIGG)
        for config in ("folder", "configs-only")
        for component in ("unet", "vae", "text_encoder", "text_encoder_2")
    ]


@pytest.mark.parametrize(("model", "config", "component"), _checkpoint_cases())
def test_checkpoint_from_single_file(checkpoint_pipe, sdxl_pipes, model, config, component):
    """config= (a local folder) and local_files_only are all diffusers needs (no original_config, no
    torch_dtype: float32 by default)."""
    loaded = getattr(checkpoint_pipe(model, config), component)
    assert loaded.dtype == torch.float32
    assert_same_weights(loaded, getattr(sdxl_pipes[model], component))


def test_bigg_checkpoint_text_encoders_differ_in_width(built, sdxl_pipes):
    """What lets diffusers tell them apart: the position embeddings' width."""
    embeddings = "text_model.embeddings.position_embedding.weight"
    with safetensors.safe_open(built[CHECKPOINTS[SDXL_BIGG]], "pt") as file:
        clip_l = file.get_slice("conditioner.embedders.0.transformer." + embeddings).get_shape()
        clip_g = file.get_slice("conditioner.embedders.1.model.positional_embedding").get_shape()
    bigg = sdxl_pipes[SDXL_BIGG]
    assert (clip_l[-1], clip_g[-1]) == (bigg.text_encoder.config.hidden_size, bigg.text_encoder_2.config.hidden_size)
    assert (clip_l[-1], clip_g[-1]) == (32, 48)
    assert bigg.unet.config.cross_attention_dim == 32 + 48


def test_checkpoint_open_clip_g_by_diffusers_converter(built, sdxl):
    """The bigG part read by the converter from_single_file would use, had it told the encoders apart."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextModelWithProjection

    model = CLIPTextModelWithProjection(sdxl.text_encoder_2.config)
    checkpoint = safetensors.torch.load_file(built[CHECKPOINT])
    converted = convert_open_clip_checkpoint(model, checkpoint, prefix="conditioner.embedders.1.model.")
    model.load_state_dict(converted, strict=True)
    assert_same_weights(model, sdxl.text_encoder_2)


@pytest.mark.parametrize("model", [SDXL, SDXL_BIGG])
def test_checkpoint_keys_are_stabilitys(built, model):
    with safetensors.safe_open(built[CHECKPOINTS[model]], "pt") as file:
        keys = list(file.keys())
        assert (
            file.get_tensor("conditioner.embedders.0.transformer.text_model.embeddings.position_ids").dtype
            == torch.int64
        )
        assert {file.get_tensor(key).dtype for key in keys if not key.endswith("position_ids")} == {torch.float32}
    prefixes = {key.split(".")[0] + "." + key.split(".")[1] for key in keys}
    assert prefixes == {"model.diffusion_model", "first_stage_model.encoder", "first_stage_model.decoder"} | {
        "first_stage_model.quant_conv",
        "first_stage_model.post_quant_conv",
        "conditioner.embedders",
    }
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "conditioner.embedders.1.model.text_projection" in keys


@pytest.mark.parametrize(
    "name", ["checkpoints/tiny-sdxl-truncated.safetensors", "checkpoints/not-a-model.safetensors"]
)
def test_broken_checkpoints_fail_to_load(built, tiny_models, name):
    from diffusers import StableDiffusionXLPipeline

    with pytest.raises(OSError, match="Unable to load weights from checkpoint file"):
        StableDiffusionXLPipeline.from_single_file(
            str(built[name]), config=str(tiny_models[SDXL]), local_files_only=True
        )


@pytest.mark.xfail(strict=True, raises=KeyError, reason=UNET_PREFIX)
def test_unet_from_single_file(built, tiny_models, sdxl):
    from diffusers import UNet2DConditionModel

    loaded = UNet2DConditionModel.from_single_file(str(built[UNET]), config=str(tiny_models[SDXL]), subfolder="unet")
    assert_same_weights(loaded, sdxl.unet)


def test_unet_with_prefix_by_diffusers_converter(built, sdxl):
    """The UNETLoader file is the checkpoint's UNet; with the prefix back, diffusers' converter reads it."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    unet = safetensors.torch.load_file(built[UNET])
    with safetensors.safe_open(built[CHECKPOINT], "pt") as file:
        in_checkpoint = {key for key in file.keys() if key.startswith("model.diffusion_model.")}
    assert {"model.diffusion_model." + key for key in unet} == in_checkpoint
    converted = convert_ldm_unet_checkpoint(
        {"model.diffusion_model." + k: v for k, v in unet.items()}, sdxl.unet.config
    )
    model = UNet2DConditionModel.from_config(sdxl.unet.config)
    model.load_state_dict(converted, strict=True)
    assert_same_weights(model, sdxl.unet)


def test_unet_config_is_comfyuis_detection(built, sdxl):
    """The unet_config derived from the diffusers config is what ComfyUI reads off the written UNet."""
    detected = comfy_modules().model_detection.detect_unet_config(safetensors.torch.load_file(built[UNET]), "")
    derived = comfy_unet_config(dict(sdxl.unet.config))
    assert {key: detected[key] for key in derived} == derived


def test_vae_from_single_file(built, tiny_models, sdxl):
    from diffusers import AutoencoderKL

    loaded = AutoencoderKL.from_single_file(str(built[VAE]), config=str(tiny_models[SDXL]), subfolder="vae")
    assert_same_weights(loaded, sdxl.vae)


@pytest.mark.parametrize(
    ("name", "component", "prefix"),
    [
        ("text_encoders/tiny-clip-l.safetensors", "text_encoder", CLIP_L_LEVEL),
        ("clip/tiny-clip-g-prefixed.safetensors", "text_encoder_2", CLIP_G_PREFIX),
    ],
)
def test_clip_files(built, sdxl, name, component, prefix):
    reference = getattr(sdxl, component)
    tensors = safetensors.torch.load_file(built[name])
    assert all(key.startswith(prefix) for key in tensors)
    unprefixed = {key.removeprefix(prefix): tensor for key, tensor in tensors.items()}
    want = reference.state_dict()
    assert sorted(unprefixed) == sorted(want)
    assert all(torch.equal(unprefixed[key], want[key]) for key in want)
    assert {tensor.dtype for tensor in tensors.values()} == {torch.float32}


def test_clip_l_file_loads_in_transformers(built, sdxl):
    """transformers 5's CLIPTextModel has no text_model level, yet loads the file's text_model.* keys."""
    from transformers import CLIPTextModel

    state_dict = safetensors.torch.load_file(built["text_encoders/tiny-clip-l.safetensors"])
    model, info = CLIPTextModel.from_pretrained(
        None, config=sdxl.text_encoder.config, state_dict=state_dict, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert_same_weights(model, sdxl.text_encoder)


def test_t5_fp16_file(built, tiny_models):
    from transformers import T5EncoderModel

    reference = T5EncoderModel.from_pretrained(str(tiny_models[FLUX] / "text_encoder_2"))
    tensors = safetensors.torch.load_file(built["text_encoders/tiny-t5-fp16.safetensors"])
    want = reference.state_dict()
    assert sorted(tensors) == sorted(set(want) - {"encoder.embed_tokens.weight"})  # tied to shared.weight
    assert {tensor.dtype for tensor in tensors.values()} == {torch.float16}
    assert all(torch.equal(tensors[key], want[key].half()) for key in tensors)
    model, info = T5EncoderModel.from_pretrained(
        None, config=reference.config, state_dict=tensors, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert torch.equal(model.encoder.embed_tokens.weight, tensors["shared.weight"])


INFERRED = {
    CHECKPOINT: "v1",  # xl_base needs conditioner.embedders.1.model.transformer.resblocks.9 (10+ bigG layers)
    CHECKPOINTS[SDXL_BIGG]: "v1",
    Z_ORIGINAL: "z-image-turbo",
    BFL: "flux-dev",
    BFL_3072: "flux-dev",
    UNET: "v1",
    VAE: "v1",
}


@pytest.mark.parametrize("name", sorted(INFERRED))
def test_infer_diffusers_model_type_from_header(built, name):
    """infer_diffusers_model_type needs key names and shapes only: a header's meta tensors give the same answer.
    It falls back to "v1" for anything it does not recognise."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    loaded = infer_diffusers_model_type(safetensors.torch.load_file(built[name]))
    assert infer_diffusers_model_type(header_tensors(built[name])) == loaded == INFERRED[name]


def test_infer_diffusers_model_type_of_loras(models_dir, tmp_path):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    loras = build_tiny_loras(models_dir, tmp_path)
    assert len(loras) == 6
    for path in loras:
        loaded = infer_diffusers_model_type(safetensors.torch.load_file(path))
        assert infer_diffusers_model_type(header_tensors(path)) == loaded == "v1", path.name


def _node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def test_single_files_named_by():
    """A prompt's checkpoint, configs-only folder and Replace Component sources, as the builder names them;
    full folders, links, other nodes and files the builder does not make are not."""
    prompt = {
        "1": _node("MDiff_LoadCheckpoint", ckpt_name="tiny-sdxl-bigg.safetensors", config="tiny-sdxl-bigg-configs"),
        "2": _node("MDiff_LoadCheckpoint", ckpt_name="tiny-sdxl.safetensors", config="tiny-sdxl"),
        "3": _node("MDiff_LoadComponents", model="tiny-sdxl-configs"),
        "4": _node("MDiff_LoadComponents", model="tiny-flux"),
        "5": _node("MDiff_ReplaceComponent", source="diffusion_models/tiny-z-image-Q8_0.gguf", components=["4", 0]),
        "6": _node("MDiff_ReplaceComponent", source="text_encoders/tiny-clip-g-prefixed.safetensors"),
        "7": _node("MDiff_ReplaceComponent", source="diffusion_models/tiny-sdxl-unet.safetensors"),
        "8": _node("MDiff_ReplaceComponent", source="diffusers/tiny-flux"),
        "9": _node("MDiff_ReplaceComponent", source="vae/someone-elses-vae.safetensors"),
        "10": _node("MDiff_LoadCheckpoint", ckpt_name=["11", 0], config="tiny-sdxl-configs"),
        "11": _node("CheckpointLoaderSimple", ckpt_name="tiny-sdxl-truncated.safetensors"),
        "12": _node("MDiff_LoraLoader", lora_name="tiny-sdxl-lora-kohya.safetensors"),
    }
    assert single_files_named_by(prompt) == [
        "checkpoints/tiny-sdxl-bigg.safetensors",
        "diffusers/tiny-sdxl-bigg-configs",
        "checkpoints/tiny-sdxl.safetensors",
        "diffusers/tiny-sdxl-configs",
        "diffusion_models/tiny-z-image-Q8_0.gguf",
        "clip/tiny-clip-g-prefixed.safetensors",  # ComfyUI lists models/clip under text_encoders
        "unet/tiny-sdxl-unet.safetensors",  # and models/unet under diffusion_models
    ]
    assert set(single_files_named_by(prompt)) <= set(FILES)
    assert single_files_named_by({"1": _node("MDiff_LoadComponents", model="tiny-sdxl")}) == []


def test_listed_in_is_comfyuis_folder_paths():
    comfy_modules()  # ComfyUI's root on sys.path
    import folder_paths

    for name, listed in LISTED_IN.items():
        assert sorted(Path(path).name for path in folder_paths.get_folder_paths(name)) == sorted(listed), name
