"""The harness judges a ComfyUI start-up log on the pack's own lines only (scripts/comfy_harness.py).

The log below is ComfyUI 0.3.75's own output, captured from a real start with a base directory whose
custom_nodes/ held a custom node that fails to import (`broken_other`), three broken copies of this pack
(a syntax error in its top-level `__init__.py`, one in `adapters/`, a missing module in `nodes/`) and a
healthy link to the checkout (`healthy`). The machine's paths are replaced by neutral placeholders: the
base directory by /path/to/base, the checkout (which held ComfyUI and the venv) by /path/to/checkout.
"""

from __future__ import annotations

import pytest
from comfy_harness import pack_load_problems

NODES = "/path/to/base/custom_nodes"
CHECKOUT = "/path/to/checkout"  # where the healthy link pointed
LOG = """\
Error while calling comfy_entrypoint in /path/to/base/custom_nodes/pack-adapters-syntax: invalid syntax (__init__.py, line 7)
Traceback (most recent call last):
  File "/path/to/checkout/.comfyui/ComfyUI/nodes.py", line 2146, in load_custom_node
    module_spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/path/to/base/custom_nodes/broken_other/__init__.py", line 1, in <module>
    import no_such_module_xyz
ModuleNotFoundError: No module named 'no_such_module_xyz'

Cannot import /path/to/base/custom_nodes/broken_other module for custom nodes: No module named 'no_such_module_xyz'
Error while calling comfy_entrypoint in /path/to/base/custom_nodes/pack-entrypoint-fails: No module named '/path/to/base/custom_nodes/pack-entrypoint-fails.nodes.no_such_module'
Traceback (most recent call last):
  File "/path/to/checkout/.comfyui/ComfyUI/nodes.py", line 2146, in load_custom_node
    module_spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 936, in exec_module
  File "<frozen importlib._bootstrap_external>", line 1074, in get_code
  File "<frozen importlib._bootstrap_external>", line 1004, in source_to_code
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/path/to/base/custom_nodes/pack-init-syntax/__init__.py", line 14
    def broken(:
               ^
SyntaxError: invalid syntax

Cannot import /path/to/base/custom_nodes/pack-init-syntax module for custom nodes: invalid syntax (__init__.py, line 14)

Import times for custom nodes:
   0.0 seconds (IMPORT FAILED): /path/to/base/custom_nodes/pack-init-syntax
   0.0 seconds (IMPORT FAILED): /path/to/base/custom_nodes/broken_other
   0.0 seconds (IMPORT FAILED): /path/to/base/custom_nodes/pack-adapters-syntax
   0.0 seconds (IMPORT FAILED): /path/to/base/custom_nodes/pack-entrypoint-fails
   0.8 seconds: /path/to/base/custom_nodes/healthy

"""  # noqa: E501 (ComfyUI's lines, verbatim)
# ComfyUI's own comfy_extras failing (the format of nodes.py's load_custom_node and init_extra_nodes).
EXTRAS_FAILED = """\
Traceback (most recent call last):
  File "/path/to/checkout/.comfyui/ComfyUI/nodes.py", line 2146, in load_custom_node
    module_spec.loader.exec_module(module)
  File "/path/to/checkout/.comfyui/ComfyUI/comfy_extras/nodes_glsl.py", line 3, in <module>
    import OpenGL
ModuleNotFoundError: No module named 'OpenGL'

Cannot import /path/to/checkout/.comfyui/ComfyUI/comfy_extras/nodes_glsl.py module for custom nodes: No module named 'OpenGL'
WARNING: some comfy_extras/ nodes did not import correctly. This may be because they are missing some dependencies.

IMPORT FAILED: nodes_glsl.py
"""  # noqa: E501 (ComfyUI's lines, verbatim)


def problems(log: str, name: str, source_root: str | None = CHECKOUT) -> list[str]:
    return pack_load_problems(log, f"{NODES}/{name}", source_root=source_root)


def test_a_healthy_pack_beside_a_broken_custom_node_is_fine():
    # The old check failed here: "IMPORT FAILED", "Cannot import" and a traceback are in the log.
    assert "IMPORT FAILED" in LOG and "Traceback (most recent call last)" in LOG
    assert problems(LOG, "healthy") == []


def test_comfyuis_own_failed_extras_are_not_the_packs():
    assert problems(EXTRAS_FAILED + LOG, "healthy") == []


@pytest.mark.parametrize("name", ["pack-init-syntax", "pack-adapters-syntax", "pack-entrypoint-fails"])
def test_a_broken_pack_is_reported(name):
    found = problems(LOG, name)
    assert f"0.0 seconds (IMPORT FAILED): {NODES}/{name}" in found


def test_the_packs_traceback_and_cannot_import_line_are_reported():
    found = problems(LOG, "pack-init-syntax")
    assert any(p.startswith(f"Cannot import {NODES}/pack-init-syntax module") for p in found)
    (traceback,) = [p for p in found if p.startswith("Traceback")]
    assert f'File "{NODES}/pack-init-syntax/__init__.py", line 14' in traceback
    assert traceback.endswith("SyntaxError: invalid syntax")
    assert "no_such_module_xyz" not in traceback  # the other node's traceback is a separate one


def test_a_traceback_through_the_pack_counts_even_when_it_loaded():
    logged = """\
Traceback (most recent call last):
  File "/path/to/checkout/.comfyui/ComfyUI/nodes.py", line 2190, in load_custom_node
    node_list = await extension.get_node_list()
  File "/path/to/base/custom_nodes/healthy/nodes/snapshot.py", line 40, in catalog_node_classes
    raise ValueError("layout changed")
ValueError: layout changed
"""
    assert len(problems(logged + LOG, "healthy")) == 1
    # The same frame by the checkout's real path (a pack loaded through its resolved folder).
    resolved = logged.replace("/path/to/base/custom_nodes/healthy/", "/path/to/checkout/")
    assert len(problems(resolved + LOG, "healthy")) == 1
    assert problems(resolved + LOG, "healthy", source_root=None) == []


def test_a_pack_missing_from_the_list_is_reported():
    (found,) = problems(LOG, "comfyui-modular-diffusers")
    assert "not in ComfyUI's list" in found


def test_another_copy_of_the_pack_is_judged_apart():
    # "comfyui-modular-diffusers-main" must not count as "comfyui-modular-diffusers", either way round.
    log = LOG.replace("/healthy", "/comfyui-modular-diffusers-main")
    assert problems(log, "comfyui-modular-diffusers-main") == []
    assert problems(log, "comfyui-modular-diffusers") != []
