"""The seed examples through a real ComfyUI server: shipped workflows, /object_info, caching, bad input."""

from __future__ import annotations

import pytest
from comfy_harness import PromptRejected, load_api_workflow

EXAMPLE_WORKFLOWS = ["example_blocks_chain", "example_sequential_blocks", "example_loop", "example_loop_two_blocks"]


def shown_state(run, node_id: str) -> dict:
    assert run.status == "success", run.error() or run.history.get("status")
    return run.output(node_id)["state"][0]


def test_chained_seed_blocks(client):
    run = client.run(load_api_workflow("example_blocks_chain"))
    state = shown_state(run, "4")
    assert state["batch_size"] == {"type": "int", "value": 12}  # 2 prompts * 3 images * 2 (encoder)
    assert state["image_latents"]["shape"] == [1, 4, 64, 64]
    assert state["prompt"]["length"] == 2
    assert "batch_size: int = 12" in run.output("4")["text"][0]


def test_sequential_blocks_in_one_node(client):
    state = shown_state(client.run(load_api_workflow("example_sequential_blocks")), "3")
    assert state["batch_size"]["value"] == 12
    assert state["image_latents"]["shape"] == [1, 4, 64, 64]


@pytest.mark.parametrize(("workflow", "expected"), [("example_loop", 10), ("example_loop_two_blocks", 20)])
def test_loops(client, workflow, expected):
    state = shown_state(client.run(load_api_workflow(workflow)), "2")
    assert state["x"] == {"type": "int", "value": expected}


def test_every_shipped_example_runs(client):
    for name in EXAMPLE_WORKFLOWS:
        run = client.run(load_api_workflow(name))
        assert run.status == "success", (name, run.error())


def test_image_from_core_load_image(client, server):
    image = server.comfy_dir / "input" / "example.png"
    (server.base / "input").mkdir(exist_ok=True)
    (server.base / "input" / "example.png").write_bytes(image.read_bytes())
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "MDiff_ExampleImageEncoderBlock", "inputs": {"image": ["1", 0], "batch_size": 5}},
        "3": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
    }
    state = shown_state(client.run(prompt), "3")
    assert state["batch_size"]["value"] == 10
    assert state["image_latents"]["shape"] == [1, 4, 64, 64]


def test_object_info_matches_the_mapping(client):
    info = client.object_info("MDiff_ExampleInputBlock")
    optional = info["input"]["optional"]
    assert optional["state"][0] == "MDIFF_STATE"
    assert optional["prompt"][0] == "STRING" and optional["prompt"][1]["multiline"] is True
    assert optional["prompt"][1]["tooltip"].startswith("list of text prompts")
    assert optional["num_images_per_prompt"][0] == "INT"
    assert optional["num_images_per_prompt"][1]["default"] == 1
    assert optional["num_images_per_prompt"][1]["tooltip"] == "number of images per prompt"
    assert info["output"] == ["MDIFF_STATE", "INT"]
    assert info["output_name"] == ["state", "batch_size"]
    assert info["output_tooltips"][1] == "calculated batch size"
    assert info["category"] == "Modular Diffusers/examples"
    assert info["description"].startswith("A block that determines batch_size")
    assert info["python_module"].endswith("comfyui-modular-diffusers")

    encoder = client.object_info("MDiff_ExampleImageEncoderBlock")["input"]["optional"]
    assert encoder["image"][0] == "IMAGE"
    # no default: an input-only INT socket; no description: the name table's description
    assert encoder["batch_size"] == ["INT", {"tooltip": "Number of samples in the batch.", "forceInput": True}]

    loop = client.object_info("MDiff_ExampleLoop")
    assert loop["input"]["optional"]["num_steps"][1]["default"] == 10
    assert loop["output"] == ["MDIFF_STATE", "INT"] and loop["output_name"] == ["state", "x"]
    show = client.object_info("MDiff_ShowState")
    assert show["output_node"] is True and show["input"]["required"]["state"][0] == "MDIFF_STATE"


def chain(num_steps: int) -> dict:
    return {
        "1": {"class_type": "MDiff_ExampleInputBlock", "inputs": {"prompt": "a\nb", "num_images_per_prompt": 3}},
        "2": {"class_type": "MDiff_ExampleLoop", "inputs": {"state": ["1", 0], "num_steps": num_steps, "x": 0}},
        "3": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
        "4": {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}},
    }


def test_cached_upstream_gives_the_results_of_a_fresh_server(client, fresh_server):
    first = client.run(chain(10))
    assert shown_state(first, "3")["x"]["value"] == 10
    second = client.run(chain(4))
    assert "1" in second.cached_nodes and "2" not in second.cached_nodes
    fresh = fresh_server.client().run(chain(4))
    assert second.output("3") == fresh.output("3")
    assert second.output("4") == fresh.output("4") == first.output("4")
    assert "x" not in shown_state(second, "4")  # the loop's writes never reached its input state


def test_a_state_feeding_two_nodes_is_not_altered(client):
    prompt = {
        "1": {"class_type": "MDiff_ExampleInputBlock", "inputs": {"prompt": "a", "num_images_per_prompt": 2}},
        "2": {"class_type": "MDiff_ExampleLoop", "inputs": {"state": ["1", 0], "num_steps": 3, "x": 0}},
        "3": {"class_type": "MDiff_ExampleLoopTwoBlocks", "inputs": {"state": ["1", 0], "num_steps": 7, "x": 100}},
        "4": {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}},
        "5": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
        "6": {"class_type": "MDiff_ShowState", "inputs": {"state": ["3", 0]}},
    }
    run = client.run(prompt)
    assert set(shown_state(run, "4")) == {"prompt", "num_images_per_prompt", "batch_size"}
    assert shown_state(run, "5")["x"]["value"] == 3 and shown_state(run, "5")["num_steps"]["value"] == 3
    assert shown_state(run, "6")["x"]["value"] == 114 and shown_state(run, "6")["num_steps"]["value"] == 7
    assert shown_state(run, "5")["batch_size"]["value"] == shown_state(run, "6")["batch_size"]["value"] == 2


def test_values_come_from_socket_then_state_then_default(client):
    prompt = {
        "1": {"class_type": "MDiff_ExampleLoop", "inputs": {"num_steps": 2, "x": 5}},
        # x and num_steps omitted: both come from the incoming state
        "2": {"class_type": "MDiff_ExampleLoopTwoBlocks", "inputs": {"state": ["1", 0]}},
        "3": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
    }
    state = shown_state(client.run(prompt), "3")
    assert state["x"]["value"] == 7 + 4 and state["num_steps"]["value"] == 2


def rejected(client, prompt) -> dict:
    with pytest.raises(PromptRejected) as caught:
        client.submit(prompt)
    assert caught.value.status == 400
    return caught.value.body


def assert_server_still_serves(client):
    run = client.run(load_api_workflow("example_loop"))
    assert shown_state(run, "2")["x"]["value"] == 10


def test_missing_required_input_is_a_validation_error(client):
    body = rejected(client, {"7": {"class_type": "MDiff_ShowState", "inputs": {}}})
    node_error = body["node_errors"]["7"]
    assert node_error["class_type"] == "MDiff_ShowState"
    assert node_error["errors"][0]["type"] == "required_input_missing"
    assert node_error["errors"][0]["details"] == "state"
    assert_server_still_serves(client)


def test_wrong_type_is_a_validation_error(client):
    prompt = load_api_workflow("example_loop")
    prompt["1"]["inputs"]["num_steps"] = "ten"
    body = rejected(client, prompt)
    error = body["node_errors"]["1"]["errors"][0]
    assert error["type"] == "invalid_input_type" and "num_steps" in error["details"]
    assert body["node_errors"]["1"]["class_type"] == "MDiff_ExampleLoop"
    assert_server_still_serves(client)


def test_unknown_node_type_is_rejected(client):
    body = rejected(client, {"1": {"class_type": "MDiff_NoSuchBlock", "inputs": {}}})
    assert body["error"]["type"] == "invalid_prompt"
    assert "MDiff_NoSuchBlock" in body["error"]["message"]
    assert_server_still_serves(client)


def test_malformed_prompts_are_rejected(client):
    dangling = load_api_workflow("example_loop")
    dangling["2"]["inputs"]["state"] = ["99", 0]
    body = rejected(client, dangling)
    assert body["node_errors"] or "99" in body["error"]["message"]
    bad_link = load_api_workflow("example_loop")
    bad_link["2"]["inputs"]["state"] = ["1"]
    body = rejected(client, bad_link)
    assert body["node_errors"]["2"]["errors"][0]["type"] == "bad_linked_input"
    assert "state" in body["node_errors"]["2"]["errors"][0]["details"]
    status, body = client.request("POST", "/api/prompt", {"client_id": client.client_id})
    assert status == 400 and body["error"]["type"] == "no_prompt"
    assert_server_still_serves(client)


def test_block_failure_names_node_block_and_unset_inputs(client):
    prompt = {
        "5": {"class_type": "MDiff_ExampleInputBlock", "inputs": {"prompt": "a"}},  # num_images_per_prompt omitted
        "6": {"class_type": "MDiff_ShowState", "inputs": {"state": ["5", 0]}},
    }
    run = client.run(prompt)
    assert run.status == "error"
    error = run.error()
    assert error["node_id"] == "5" and error["node_type"] == "MDiff_ExampleInputBlock"
    message = error["exception_message"]
    assert "node 5 'Example: Input Block'" in message and "block InputBlock" in message
    assert "inputs without a value: num_images_per_prompt" in message
    assert_server_still_serves(client)
