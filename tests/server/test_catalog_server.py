"""Every node of the pack, as the server lists it: ours, categorised, named, described, with tooltips."""

from __future__ import annotations

from comfy_harness import PACK_DIR_NAME

# Released before the catalog: these ids, widgets and their order never change.
RELEASED_NODES = {
    "MDiff_LoadComponents",
    "MDiff_ShowState",
    "MDiff_SDXLTextEncoder",
    "MDiff_SDXLVaeEncoder",
    "MDiff_SDXLDenoise",
    "MDiff_SDXLDecoder",
    "MDiff_SDXLText2Image",
    "MDiff_SDXLImage2Image",
    "MDiff_ExampleInputBlock",
    "MDiff_ExampleImageEncoderBlock",
    "MDiff_ExampleSequentialBlocks",
    "MDiff_ExampleLoop",
    "MDiff_ExampleLoopTwoBlocks",
}


def _tooltips(node: dict) -> list[str | None]:
    return [
        options.get("tooltip")
        for section in ("required", "optional")
        for _, (_, options) in node["input"].get(section, {}).items()
    ]


def test_every_node_is_ours_and_documented(client):
    info = client.get("/api/object_info")
    ours = {name: node for name, node in info.items() if node["python_module"].endswith(PACK_DIR_NAME)}
    assert RELEASED_NODES <= set(ours)  # node ids are stable: saved workflows refer to them
    generated = set(ours) - RELEASED_NODES
    assert len(generated) > 250 and all(name.startswith("MDiff_") for name in generated)
    inputs = outputs = 0
    missing_inputs = missing_outputs = 0
    for name, node in ours.items():
        assert node["category"].startswith("Modular Diffusers/"), name
        assert node["display_name"] and node["display_name"] != name, name
        assert node["description"], name
        tooltips = _tooltips(node)
        output_tooltips = node.get("output_tooltips") or []
        assert len(output_tooltips) == len(node["output"]), name
        if name in RELEASED_NODES:
            assert all(tooltips), f"{name}: an input has no tooltip"
            assert all(output_tooltips), f"{name}: an output has no tooltip"
        inputs += len(tooltips)
        missing_inputs += tooltips.count(None)
        outputs += len(output_tooltips)
        missing_outputs += sum(1 for tooltip in output_tooltips if not tooltip)
        assert all(not t.startswith(("LATENT", "PIPELINE")) for t in node["output"]), name
    assert missing_inputs / inputs <= 0.05, f"{missing_inputs} of {inputs} inputs have no tooltip"
    assert missing_outputs / outputs <= 0.05, f"{missing_outputs} of {outputs} outputs have no tooltip"
    core = {"INT", "FLOAT", "STRING", "BOOLEAN", "IMAGE", "MASK", "AUDIO", "VIDEO"}
    custom_types = {t for node in ours.values() for t in node["output"] if t not in core}
    assert all(t.startswith("MDIFF_") for t in custom_types), custom_types
