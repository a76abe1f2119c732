"""The components socket: loaded diffusers components plus their ComfyUI model patchers, and the
per-execution pipeline a block node runs with.

Models (torch modules) are shared by every node that uses the same loader output. Schedulers and
guiders are not: they keep per-run state (`set_timesteps`, the guider's step state), so each node
run works on its own copy, and the copies travel downstream inside the pipeline state (under
`EXECUTION_COMPONENTS_KEY`). Two branches that share a loader therefore never see each other's
timesteps, and a node that sets the timesteps hands the same scheduler state to the loop after it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.modular_pipelines import ModularPipeline, PipelineState

from .batched_guidance import batch_guider_if_enabled
from .models import load_models, make_patcher

logger = logging.getLogger(__name__)

EXECUTION_COMPONENTS_KEY = "_mdiff_execution_components"


def is_execution_scoped(component: Any) -> bool:
    """Configured objects that are not models (schedulers, guiders, image processors)."""
    return isinstance(component, ConfigMixin) and not isinstance(component, torch.nn.Module)


@dataclass
class ComponentsBundle:
    """What flows on the components socket. Treat as read-only: it is shared and cached."""

    pipeline: ModularPipeline
    source: str
    family: str | None = None  # the diffusers `modular_pipelines` folder the pipeline class comes from
    latent_format: Any = None  # a comfy.latent_formats instance, for previews
    preview_latents: Callable[[Any, Any], Any] | None = None  # (latents, block_state) -> image-shaped latents
    patchers: dict[str, Any] = field(default_factory=dict)
    batched_guidance_proven: bool = False  # the family runs batched guidance by default (`batched_guidance`)
    # Where each model component's config is (a diffusers folder with `<name>/config.json`), for weights
    # from single files; and the model components the folder has no weights for (a configs-only folder).
    config_folders: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    dtype: torch.dtype = torch.float32  # what the models compute in (and new ones are loaded in)

    @classmethod
    def from_pipeline(
        cls,
        pipeline: ModularPipeline,
        source: str,
        *,
        family: str | None = None,
        latent_format: Any = None,
        preview_latents: Callable[[Any, Any], Any] | None = None,
        weight_dtypes: Mapping[str, str] | None = None,
        batched_guidance_proven: bool = False,
        config_folders: Mapping[str, str] | None = None,
        missing: tuple[str, ...] = (),
        dtype: torch.dtype = torch.float32,
    ) -> ComponentsBundle:
        """`weight_dtypes`: component -> how its weights are stored (`comfy_layers.WEIGHT_DTYPES`)."""
        weight_dtypes = weight_dtypes or {}
        patchers = {
            name: make_patcher(component, latent_format, weight_dtypes.get(name))
            for name, component in pipeline.components.items()
            if isinstance(component, torch.nn.Module)
        }
        return cls(
            pipeline=pipeline,
            source=source,
            family=family,
            latent_format=latent_format,
            preview_latents=preview_latents,
            patchers=patchers,
            batched_guidance_proven=batched_guidance_proven,
            config_folders=dict(config_folders or {}),
            missing=missing,
            dtype=dtype,
        )

    def _comfy_cache_tensors(self) -> list[torch.Tensor]:
        """The weights this output holds, so ComfyUI's RAM-pressure cache (newest ComfyUI) sizes the
        bundle by its real memory instead of as a small object (unused by ComfyUI 0.3.75)."""
        tensors: dict[int, torch.Tensor] = {}
        for component in self.pipeline.components.values():
            if isinstance(component, torch.nn.Module):
                for tensor in [*component.parameters(), *component.buffers()]:
                    tensors.setdefault(id(tensor), tensor)
        return list(tensors.values())

    def patched(self, patches: Mapping[str, tuple[dict, float]], label: str) -> ComponentsBundle:
        """A new bundle whose components in `patches` (name -> (ComfyUI patches, strength)) are clones of
        this bundle's patchers with the patches added: the models are shared, this bundle is unchanged."""
        patchers = dict(self.patchers)
        for name, (patch, strength) in patches.items():
            clone = patchers[name].clone()
            clone.add_patches(patch, strength)
            patchers[name] = clone
        return dataclasses.replace(self, patchers=patchers, source=f"{self.source} + {label}")

    def replaced(
        self, name: str, module: torch.nn.Module, label: str, *, weight_dtype: str | None = None, config_folder: str
    ) -> ComponentsBundle:
        """A new bundle with component `name` replaced by `module` (handed to ComfyUI like the loader's, stored
        as `weight_dtype` when given) in a copy of the pipeline: this bundle and its pipeline are unchanged."""
        pipeline = copy.copy(self.pipeline)
        pipeline._component_specs = dict(self.pipeline._component_specs)  # the copy's own specs
        pipeline.update_components(**{name: module})
        patchers = {**self.patchers, name: make_patcher(module, self.latent_format, weight_dtype)}
        return dataclasses.replace(
            self,
            pipeline=pipeline,
            patchers=patchers,
            source=f"{self.source} + {label}",
            config_folders={**self.config_folders, name: config_folder},
            missing=tuple(other for other in self.missing if other != name),
        )

    def get(self, name: str) -> Any:
        return self.pipeline.components.get(name)

    def load(self, names: Iterable[str]) -> None:
        load_models(self.patchers[name] for name in names if name in self.patchers)

    def __repr__(self) -> str:
        loaded = ", ".join(sorted(name for name, value in self.pipeline.components.items() if value is not None))
        return f"ComponentsBundle({self.source}: {loaded})"


def prepare_components(
    pipeline: ModularPipeline,
    bundle: ComponentsBundle | None,
    state: PipelineState,
    config_overrides: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Fill `pipeline` (the node's own, made from its block) with the components its block expects.

    Models come from the bundle. Execution-scoped components come from the incoming state when an
    upstream node carried them, else from the bundle, else the block's own default; each is copied,
    and `config_overrides` (component -> config values set on the node) are applied to the copy.
    Returns the execution-scoped components to carry downstream.
    """
    carried = state.get(EXECUTION_COMPONENTS_KEY) or {}
    components: dict[str, Any] = {}
    scoped: dict[str, Any] = {}
    for name in pipeline.component_names:
        value = carried.get(name)
        if value is None and bundle is not None:
            value = bundle.get(name)
        if value is None:
            value = getattr(pipeline, name, None)
        if value is None:
            continue
        if is_execution_scoped(value):
            overrides = dict(config_overrides.get(name, {}))
            if "guidance_scale" in overrides and value.config.get("enabled") is False:
                # A guider that a model ships switched off: setting a scale on the node switches it on
                # (a scale of 1 still means no guidance).
                overrides["enabled"] = True
            value = type(value).from_config(value.config, **overrides) if overrides else copy.deepcopy(value)
            scoped[name] = value
        components[name] = value
    proven = bool(bundle and bundle.batched_guidance_proven)
    for value in scoped.values():
        # By default for proven families (adapters/batched_guidance.py); in place, on this run's copy.
        # Judged on the components this run has (a ControlNet branch without a ControlNet model is no reason).
        batch_guider_if_enabled(value, components, proven)
    if bundle is not None:
        # Model settings from the folder's index (e.g. the step at which a second denoiser takes over),
        # which a pipeline made from the block alone would have at the block's defaults.
        source = bundle.pipeline.config
        components.update({name: source[name] for name in getattr(pipeline, "_config_specs", {}) if name in source})
    pipeline.update_components(**components)
    if bundle is not None:
        attach_undeclared(pipeline, bundle)
    return scoped


def attach_undeclared(pipeline: ModularPipeline, bundle: ComponentsBundle) -> None:
    """The bundle's models and tokenizers that the node's block does not declare, as plain attributes of its
    pipeline: some blocks read one anyway (a text encoder step that casts its embeddings to the denoiser's
    dtype), as they can in diffusers' whole pipeline. They stay out of `component_names`, so the node never
    loads them; schedulers and guiders (per-run state) are not attached."""
    declared = set(pipeline.component_names)
    for name, value in bundle.pipeline.components.items():
        if name not in declared and value is not None and not is_execution_scoped(value):
            object.__setattr__(pipeline, name, value)


def carry_components(state: PipelineState, scoped: Mapping[str, Any]) -> None:
    """Record this run's execution-scoped components in the (already forked) output state."""
    if scoped:
        state.values[EXECUTION_COMPONENTS_KEY] = {**(state.get(EXECUTION_COMPONENTS_KEY) or {}), **scoped}
