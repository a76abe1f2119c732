"""What a tiny-model recipe is, and how one is written: the generic half of every tiny random-weight model.

A `Recipe` is data: the pipeline class whose `save_pretrained` writes the folder (and its extra config,
such as `boundary_ratio`), the in-memory tokenizers, the random-weight models with their seed offsets,
constructors, configs and weight-scaling tweaks, and the scheduler. One module per family in this package
holds its recipes; scripts/tiny_models.py is the registry (folder name -> recipe). Adding a model is adding
a recipe: nothing here knows any family.

Class names are strings ("diffusers.FluxPipeline"), imported only when a folder is written, so importing a
recipe (and checking that a folder is already built) never imports torch, diffusers or transformers.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tiny_build

# A model's config: keyword arguments, or a function of the recipe's tokenizers (component name -> the
# built tokenizer) that returns them, for configs that depend on a tokenizer (vocabulary size, special ids)
# or on a helper that imports something heavy.
Config = Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]]


def resolve(name: str) -> Any:
    """The object a dotted name such as "diffusers.FluxPipeline" names."""
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


class Tweak(Protocol):
    def apply(self, model: Any) -> None:
        """Change `model`'s weights in place (called under torch.no_grad())."""


@dataclass(frozen=True, kw_only=True)
class Scale:
    """Multiply every parameter whose full name (as in `named_parameters()`) matches the regular
    expression `params` by `factor`. A pattern that matches nothing is an error, not a silent no-op."""

    params: str
    factor: float

    def apply(self, model: Any) -> None:
        matched = [param for name, param in model.named_parameters() if re.fullmatch(self.params, name)]
        if not matched:
            raise ValueError(f"{self.params!r} matches no parameter of {type(model).__name__}")
        for param in matched:
            param.mul_(self.factor)


@dataclass(frozen=True, kw_only=True)
class PinPosterior:
    """Make a VAE encoder near-deterministic and its latents strong: `conv` (a submodule path) outputs the
    posterior's moments, rows [mean..., logvar...]; scale the mean rows by `mean_scale` and pin the
    log-variance to `logvar` (zero weights, constant bias)."""

    conv: str
    mean_scale: float
    logvar: float

    def apply(self, model: Any) -> None:
        conv = model.get_submodule(self.conv)
        moments = conv.weight.shape[0] // 2
        conv.weight[:moments].mul_(self.mean_scale)
        conv.bias[:moments].mul_(self.mean_scale)
        conv.weight[moments:].zero_()
        conv.bias[moments:].fill_(self.logvar)


@dataclass(frozen=True, kw_only=True)
class TieRows:
    """Give each `group` consecutive output rows (dim 0) of every parameter whose full name matches `params`
    the values of the group's first row. For a conv before a depth-to-space step (a VAE decoder's last conv
    when it un-patchifies), whose consecutive output channels are the sub-pixels of one channel, this makes
    the sub-pixels of a patch equal: smooth frames instead of per-pixel white noise, which lossy video
    codecs (H.264 in yuv420p) wipe out."""

    params: str
    group: int

    def apply(self, model: Any) -> None:
        matched = [param for name, param in model.named_parameters() if re.fullmatch(self.params, name)]
        if not matched:
            raise ValueError(f"{self.params!r} matches no parameter of {type(model).__name__}")
        for param in matched:
            if param.shape[0] % self.group:
                raise ValueError(f"{self.params!r}: {param.shape[0]} rows are not groups of {self.group}")
            rows = param.view(param.shape[0] // self.group, self.group, *param.shape[1:])
            rows.copy_(rows[:, :1].clone().expand_as(rows))


@dataclass(frozen=True, kw_only=True)
class Model:
    """A component with seeded random weights: `cls(**config)` (diffusers models), or
    `cls(config_cls(**config))` (transformers models, which take a config object); then its `tweaks`."""

    cls: str
    config: Config
    config_cls: str | None = None
    # torch.manual_seed(build seed * 100 + seed) right before construction: each model has its own random
    # stream, so adding a component (with a new offset) leaves the others' weights as they were.
    seed: int
    tweaks: tuple[Tweak, ...] = ()
    # A torch dtype name ("float16") to store the weights in, cast after the tweaks (float32 when None).
    dtype: str | None = None

    def construct(self, tokenizers: Mapping[str, Any]) -> Any:
        config = self.config(tokenizers) if callable(self.config) else self.config
        if self.config_cls is None:
            return resolve(self.cls)(**config)
        return resolve(self.cls)(resolve(self.config_cls)(**config))


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    """`cls(**config)`: a scheduler has no weights."""

    cls: str
    config: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Everything that makes one tiny model folder; see the module docstring."""

    kind: str  # the folder name the shipped workflows use, and the marker's "kind"
    summary: str  # one line, for `scripts/build_tiny.py --list`
    # Bump when anything in the recipe changes what is written, so existing folders get rebuilt.
    builder_version: int
    # The pipeline class whose save_pretrained writes the folder; None for a family only Modular Diffusers
    # has (no classic pipeline class): then `modular_pipeline` writes it (see `_write_modular`).
    pipeline: str | None = None
    pipeline_config: Mapping[str, Any] = field(default_factory=dict)  # its other __init__ arguments
    tokenizers: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    models: Mapping[str, Model]
    scheduler: Scheduler
    # Other weightless components the pipeline takes (a guider), by name: `cls(**config)`, saved as configs.
    configs: Mapping[str, Scheduler] = field(default_factory=dict)
    # A modular pipeline class name ("HunyuanVideo15ModularPipeline") when diffusers cannot map `pipeline` to
    # it: also write a modular_model_index.json naming it (tiny_build.write_modular_index).
    modular_pipeline: str | None = None
    record_kind: bool = True  # False only for tiny-sdxl, whose marker predates `kind`

    def __post_init__(self) -> None:
        seeds = [model.seed for model in self.models.values()]
        if len(set(seeds)) != len(seeds) or not all(0 < seed < 100 for seed in seeds):
            raise ValueError(f"{self.kind}: seed offsets must be distinct and in 1..99, not {seeds}")
        if self.pipeline is None and (self.modular_pipeline is None or self.pipeline_config or self.configs):
            raise ValueError(f"{self.kind}: without a pipeline, a modular_pipeline (and no pipeline_config, configs)")
        names = [*self.tokenizers, *self.models, *self.configs, "scheduler"]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.kind}: component names must be distinct")

    @property
    def components(self) -> tuple[str, ...]:
        """The folder's component subfolders."""
        return (*self.models, *self.tokenizers, "scheduler", *self.configs)

    def build(self, out_dir: Path, seed: int = 0) -> Path:
        """Write the folder to `out_dir` (or keep it, when already built with this seed and builder
        version) and return its path. Raises FileExistsError when `out_dir` exists, is not empty and was
        not made by a tiny-model builder."""
        return tiny_build.build_folder(
            out_dir,
            seed,
            kind=self.kind,
            builder_version=self.builder_version,
            write=self.write,
            record_kind=self.record_kind,
        )

    def is_complete(self, out_dir: Path, seed: int = 0) -> bool:
        """True when `out_dir` holds a finished build of this recipe, builder version and seed."""
        kind = self.kind if self.record_kind else None
        return tiny_build.is_complete(Path(out_dir), seed, self.builder_version, kind)

    def write(self, target: Path, seed: int) -> None:
        """Construct the seeded random components and `save_pretrained` them into `target`."""
        tokenizers = {name: make() for name, make in self.tokenizers.items()}
        models = self._models(tokenizers, seed)
        scheduler = resolve(self.scheduler.cls)(**self.scheduler.config)
        if self.pipeline is None:
            self._write_modular(target, {**tokenizers, **models, "scheduler": scheduler})
            return
        configs = {name: resolve(spec.cls)(**spec.config) for name, spec in self.configs.items()}
        pipe = resolve(self.pipeline)(**tokenizers, **models, scheduler=scheduler, **configs, **self.pipeline_config)
        pipe.save_pretrained(str(target), safe_serialization=True)
        tiny_build.drop_empty_index_entries(target)
        if self.modular_pipeline is not None:
            tiny_build.write_modular_index(target, self.modular_pipeline)

    def _write_modular(self, target: Path, components: Mapping[str, Any]) -> None:
        """The folder of a family without a classic pipeline, as its modular pipeline (built from its
        default blocks) saves it: each component in its subfolder and a modular_model_index.json naming the
        pipeline class, its blocks and each component's class. The index records where each component was
        saved (this build's staging folder): left out (null), as in tiny_build.write_modular_index, since
        diffusers loads a component whose files are in the folder from the folder."""
        pipe = resolve(f"diffusers.{self.modular_pipeline}")()
        pipe.update_components(**components)
        pipe.save_pretrained(str(target), safe_serialization=True, overwrite_modular_index=True)
        index_path = target / "modular_model_index.json"
        index = json.loads(index_path.read_text(encoding="utf-8"))
        for value in index.values():
            if isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict):
                value[2]["pretrained_model_name_or_path"] = None
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _models(self, tokenizers: Mapping[str, Any], seed: int) -> dict[str, Any]:
        import torch

        models = {}
        # Seed each model separately and leave the caller's global RNG state as it was.
        with torch.random.fork_rng(devices=[]):
            for name, model in self.models.items():
                torch.manual_seed(seed * 100 + model.seed)
                models[name] = model.construct(tokenizers)
        with torch.no_grad():
            for name, model in self.models.items():
                for tweak in model.tweaks:
                    tweak.apply(models[name])
                if model.dtype is not None:
                    models[name].to(getattr(torch, model.dtype))
        return models
