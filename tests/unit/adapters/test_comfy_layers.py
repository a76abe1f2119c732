"""ComfyUI's layers inside diffusers and transformers modules: every castable leaf converted in place,
no weight copied, results bit-identical while nothing is cast, and the cast path the same numbers."""

from __future__ import annotations

import comfy.ops
import pytest
import torch
from comfyui_modular_diffusers.adapters.comfy_layers import CastOwnForward, castable_class, make_castable
from diffusers.modular_pipelines import ModularPipeline


class OwnForwardNorm(torch.nn.LayerNorm):
    """A norm that upcasts itself (like diffusers' FP32LayerNorm): its forward must survive conversion."""

    def forward(self, x):
        return torch.nn.functional.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float())


class Gamma(torch.nn.Module):
    """A leaf whose parameter ComfyUI's ops know nothing of (like Wan's RMS_norm `gamma`)."""

    def __init__(self):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.ones(8))

    def forward(self, x):
        return x * self.gamma


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 8), OwnForwardNorm(8), Gamma(), torch.nn.Conv1d(1, 1, 3))


def test_classes_become_comfyuis_and_own_forwards_are_kept():
    assert castable_class(torch.nn.Linear) is comfy.ops.disable_weight_init.Linear
    wrapped = castable_class(OwnForwardNorm)
    assert issubclass(wrapped, CastOwnForward) and issubclass(wrapped, OwnForwardNorm)
    assert castable_class(OwnForwardNorm) is wrapped  # made once


def test_conversion_keeps_every_weight_object_and_the_results():
    net = small_net()
    x = torch.randn(2, 1, 8)
    before = net(x)
    weights = [p.data_ptr() for p in net.parameters()]
    assert make_castable(net) == (3, 1)  # Linear, the norm, Conv1d; Gamma left as it is
    assert [p.data_ptr() for p in net.parameters()] == weights and type(net[2]) is Gamma
    assert torch.equal(net(x), before)
    for layer in (net[0], net[1], net[3]):
        layer.comfy_cast_weights = True  # what ComfyUI does to a streamed layer
    assert torch.equal(net(x), before)  # cast to the same dtype and device: the same numbers


@pytest.fixture(scope="module")
def sdxl(tiny_model):
    pipeline = ModularPipeline.from_pretrained(str(tiny_model))
    pipeline.load_components(dtype=torch.float32)
    return pipeline


def test_a_real_unet_and_text_encoder_are_bit_identical(sdxl):
    torch.manual_seed(1)
    sample, text = torch.randn(1, 4, 8, 8), torch.randn(1, 7, 64)
    added = {"text_embeds": torch.randn(1, 32), "time_ids": torch.randn(1, 6)}
    tokens = torch.randint(0, 100, (1, 7))
    with torch.no_grad():
        unet_before = sdxl.unet(sample, 500, text, added_cond_kwargs=added).sample
        text_before = sdxl.text_encoder(tokens).last_hidden_state
        converted, _ = make_castable(sdxl.unet)
        make_castable(sdxl.text_encoder)
        assert converted > 50
        assert torch.equal(sdxl.unet(sample, 500, text, added_cond_kwargs=added).sample, unet_before)
        assert torch.equal(sdxl.text_encoder(tokens).last_hidden_state, text_before)


def test_fp8_storage_keeps_what_diffusers_keeps_in_precision(tiny_model):
    from comfyui_modular_diffusers.adapters.comfy_layers import skip_patterns, store_weights

    pipeline = ModularPipeline.from_pretrained(str(tiny_model))
    pipeline.load_components(dtype=torch.float16)
    unet = pipeline.unet
    fp16_bytes = sum(t.nelement() * t.element_size() for t in unet.state_dict().values())
    make_castable(unet)
    stored = store_weights(unet, "fp8_e4m3fn")
    fp8_bytes = sum(t.nelement() * t.element_size() for t in unet.state_dict().values())
    assert stored > 40 and 0.45 < fp8_bytes / fp16_bytes < 0.55  # about half of fp16
    assert "norm" in skip_patterns(unet)
    dtypes = {name: layer.weight.dtype for name, layer in unet.named_modules() if hasattr(layer, "comfy_cast_weights")}
    assert dtypes["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"] == torch.float8_e4m3fn
    assert all(dtype == torch.float16 for name, dtype in dtypes.items() if "norm" in name)
    assert unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q.comfy_cast_weights is True


def test_embeddings_never_go_to_fp8():
    from comfyui_modular_diffusers.adapters.comfy_layers import store_weights

    net = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 8))
    make_castable(net)
    assert store_weights(net, "fp8_e5m2") == 1
    assert net[0].weight.dtype == torch.float32 and net[1].weight.dtype == torch.float8_e5m2
    out = net(torch.tensor([[1, 2]]))  # computed in the input's dtype through ComfyUI's casting
    assert out.dtype == torch.float32


def test_fp8_e4m3fn_fast_without_fp8_matmuls_is_fp8_e4m3fn(tiny_model):
    """On a device without fp8 compute (this CPU, unless ComfyUI runs with --supports-fp8-compute) the
    _fast option keeps ComfyUI's casting layers: the same layers and the same numbers as fp8_e4m3fn."""
    import comfy.model_management as mm
    from comfyui_modular_diffusers.adapters.comfy_layers import store_weights
    from diffusers import UNet2DConditionModel

    assert not mm.supports_fp8_compute(torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    sample, text = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 7, 64, generator=generator)
    added = {
        "text_embeds": torch.randn(1, 32, generator=generator),
        "time_ids": torch.randn(1, 6, generator=generator),
    }
    runs = {}
    for option in ("fp8_e4m3fn", "fp8_e4m3fn_fast"):
        unet = UNet2DConditionModel.from_pretrained(tiny_model / "unet")
        make_castable(unet)
        stored = store_weights(unet, option, torch.device("cpu"))
        with torch.no_grad():
            out = unet(sample, 500, text, added_cond_kwargs=added).sample
        runs[option] = (stored, [type(layer) for layer in unet.modules()], out)
    (stored, classes, out), (fast_stored, fast_classes, fast_out) = runs.values()
    assert stored > 40 and fast_stored == stored
    assert fast_classes == classes and comfy.ops.fp8_ops.Linear not in fast_classes
    assert torch.equal(fast_out, out)
