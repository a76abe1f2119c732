"""Every node of the pack, as the server lists it: ours, categorised, named, described, with tooltips."""

from __future__ import annotations

from comfy_harness import PACK_DIR_NAME

EXPECTED_NODES = {
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


def test_every_node_is_ours_and_documented(client):
    info = client.get("/api/object_info")
    ours = {name: node for name, node in info.items() if node["python_module"].endswith(PACK_DIR_NAME)}
    assert set(ours) == EXPECTED_NODES  # node ids are stable: saved workflows refer to them
    for name, node in ours.items():
        assert node["category"].startswith("Modular Diffusers/"), name
        assert node["display_name"] and node["display_name"] != name, name
        assert node["description"], name
        for section in ("required", "optional"):
            for input_name, (_, options) in node["input"].get(section, {}).items():
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        tooltips = node.get("output_tooltips") or []
        assert len(tooltips) == len(node["output"]) and all(tooltips), f"{name} outputs lack tooltips"
        assert all(not t.startswith(("LATENT", "PIPELINE")) for t in node["output"]), name
    custom_types = {t for node in ours.values() for t in node["output"] if t not in ("INT", "FLOAT", "IMAGE")}
    assert all(t.startswith("MDIFF_") for t in custom_types), custom_types
