"""What a node made from a block looks like, independent of ComfyUI's node API.

`NodePlan.from_block` reads a `ModularPipelineBlocks` of any kind (leaf, sequential, auto /
conditional, loop) and gives its sockets: one `InputSocket` per shown input, one `ConfigSocket` per
component setting shown as a widget (a guider's `guidance_scale`), one `OutputSocket` per shown output.
Which ones are shown and as what is `sockets.py`'s decision; `layout.py` turns a plan into a schema and
`run.py` runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffusers.modular_pipelines import InputParam, LoopSequentialPipelineBlocks, ModularPipelineBlocks, OutputParam

from .sockets import DEFAULT_MAPPING, SHOW_TYPED, SocketMapping, gives_video, shows_input, shows_output
from .spec import NameRule, SocketSpec

STATE_SOCKET = "state"
COMPONENTS_SOCKET = "components"
RESERVED_SOCKETS = (STATE_SOCKET, COMPONENTS_SOCKET)


@dataclass(frozen=True)
class InputSocket:
    param: InputParam
    spec: SocketSpec
    trigger: bool = False  # a conditional block's branch trigger that no branch declares

    @property
    def name(self) -> str:
        return self.spec.name or self.param.name

    @property
    def is_required(self) -> bool:
        """Required in ComfyUI's sense: only widgets, which always carry a value. A required
        socket may still be fed by the incoming state, so it stays optional and is checked when
        the node runs."""
        return bool(self.param.required) and self.spec.is_widget


@dataclass(frozen=True)
class ConfigSocket:
    """A widget that sets `key` in the config of an execution-scoped component (a guider's scale)."""

    component: str
    key: str
    spec: SocketSpec

    @property
    def name(self) -> str:
        return self.spec.name or self.key


@dataclass(frozen=True)
class OutputSocket:
    param: OutputParam
    spec: SocketSpec

    @property
    def name(self) -> str:
        return self.param.name


@dataclass(frozen=True, kw_only=True)
class NodePlan:
    block: ModularPipelineBlocks
    inputs: tuple[InputSocket, ...]
    outputs: tuple[OutputSocket, ...]
    config: tuple[ConfigSocket, ...] = ()
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    video_output: int | None = None  # the output whose frames also go out as a VIDEO

    @property
    def block_name(self) -> str:
        return type(self.block).__name__

    @property
    def checks_required(self) -> bool:
        """Only a leaf block's `required` flags are reliable: a composite block's combined inputs can
        mark as required a value that one of its own sub-blocks produces (diffusers then raises at
        the leaf, naming the parameter)."""
        return not getattr(self.block, "sub_blocks", None)

    @property
    def needs_components(self) -> bool:
        return bool(self.block.expected_components)

    @classmethod
    def from_block(
        cls,
        block: ModularPipelineBlocks,
        mapping: SocketMapping = DEFAULT_MAPPING,
        *,
        exposed: Sequence[str] | None = None,
        fixed: Mapping[str, Any] | None = None,
        output_names: Sequence[str] | None = None,
        component_inputs: Mapping[str, Mapping[str, NameRule]] | None = None,
        policy: str = SHOW_TYPED,
    ) -> NodePlan:
        """`exposed` limits the input sockets to these parameter names, in this order (the others still
        come from the state or their default); `fixed` sets parameters to constant values without a
        socket; `output_names` limits the output sockets (everything stays in the output state);
        `component_inputs` (component -> config key -> rule) adds component settings as widgets; `policy`
        is the show policy for a node that does not list its inputs (`sockets.shows_input`)."""
        if isinstance(block, LoopSequentialPipelineBlocks) and not block.sub_blocks:
            raise ValueError(f"block {type(block).__name__} is a loop without steps (a base for a family's loop)")
        fixed = dict(fixed or {})
        inputs = _input_sockets(block, mapping, fixed, exposed, policy)
        config = _config_sockets(mapping, component_inputs or {})
        outputs = _output_sockets(block, mapping, output_names)
        _check_names(type(block).__name__, [socket.name for socket in inputs], [socket.name for socket in config])
        video = next((i for i, socket in enumerate(outputs) if gives_video(socket.name, socket.spec)), None)
        return cls(block=block, inputs=inputs, outputs=outputs, config=config, fixed=fixed, video_output=video)


def _input_sockets(
    block: ModularPipelineBlocks,
    mapping: SocketMapping,
    fixed: Mapping[str, Any],
    exposed: Sequence[str] | None,
    policy: str,
) -> tuple[InputSocket, ...]:
    triggers = _undeclared_trigger_inputs(block)
    trigger_names = {param.name for param in triggers}
    sockets: dict[str, InputSocket] = {}
    seen: set[str] = set()
    for param in [*block.inputs, *triggers]:
        # A kwargs_type group (e.g. all denoiser inputs, name None) is reached through the state. A loop's
        # merged inputs can repeat a name whose declarations differ only in description or default
        # (diffusers dedupes them by equality): the first declaration wins.
        if param.name is None or param.name in seen or param.name in fixed:
            continue
        seen.add(param.name)
        # Copy: reading `.inputs` of conditional and loop blocks rewrites `required` on shared objects.
        param = dataclasses.replace(param)
        socket = InputSocket(param, mapping.input_socket(param), trigger=param.name in trigger_names)
        if exposed is None and shows_input(param.name, socket.spec, policy, trigger=socket.trigger):
            sockets[param.name] = socket
        elif exposed is not None and param.name in exposed:
            sockets[param.name] = socket
    if exposed is None:
        return tuple(sockets.values())
    return tuple(sockets[name] for name in exposed if name in sockets)  # in the order the node lists them


def _config_sockets(
    mapping: SocketMapping, component_inputs: Mapping[str, Mapping[str, NameRule]]
) -> tuple[ConfigSocket, ...]:
    # The widget is named after the key unless its rule renames it (a second guider's `guidance_scale`
    # shown as `guidance_scale_2`).
    return tuple(
        ConfigSocket(component, key, mapping.extended({key: rule}).input_socket(InputParam(key)))
        for component, rules in component_inputs.items()
        for key, rule in rules.items()
    )


def _output_sockets(
    block: ModularPipelineBlocks, mapping: SocketMapping, output_names: Sequence[str] | None
) -> tuple[OutputSocket, ...]:
    outputs: dict[str, OutputSocket] = {}
    for param in block.intermediate_outputs:
        if param.name in outputs or (output_names is not None and param.name not in output_names):
            continue
        socket = OutputSocket(dataclasses.replace(param), mapping.output_socket(param))
        if output_names is not None or shows_output(param.name, socket.spec):
            outputs[param.name] = socket
    return tuple(outputs.values())


def _check_names(block_name: str, inputs: list[str], config: list[str]) -> None:
    clashes = {name for name in inputs if inputs.count(name) > 1 or name in RESERVED_SOCKETS}
    if clashes:
        raise ValueError(f"block {block_name}: input names {sorted(clashes)} clash with other sockets")
    clashes = {name for name in config if config.count(name) > 1} | (set(config) & set(inputs))
    if clashes:
        raise ValueError(f"block {block_name}: component inputs {sorted(clashes)} clash with block inputs")


def _undeclared_trigger_inputs(block: ModularPipelineBlocks) -> list[InputParam]:
    """A conditional block picks its branch from trigger values in the state; a trigger that no
    branch declares as an input still needs a socket to be settable."""
    declared = {param.name for param in block.inputs}
    names = getattr(block, "block_names", None) or list(getattr(block, "sub_blocks", {}))
    params = []
    for trigger, branch in zip(getattr(block, "block_trigger_inputs", None) or [], names, strict=False):
        if trigger is not None and trigger not in declared:
            params.append(InputParam(trigger, description=f"Set to run the '{branch}' branch of this block."))
    return params
