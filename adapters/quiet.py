"""Diffusers warnings that every node run (or single-file load) prints and that say nothing to a ComfyUI user,
kept out of ComfyUI's log while the pack itself calls diffusers (every other diffusers warning stays).

- "Guiders are currently an experimental feature ...": `BaseGuidance.__init__` logs it for every guider
  made, and a node run makes two (its pipeline's default, and the copy that takes the node's scale).
- "Component was not created using `ComponentSpec` ...": `update_components` logs it for the guider and
  scheduler copies a node run hands to its pipeline.
- "There are modules in <Model> that should be kept in float32: []. ...": diffusers' `from_single_file`
  casts every model it reads to `torch_dtype`, and `ModelMixin.to` warns even when that list is empty (the
  warning with modules in the list stays).
- "It seems like you are using a DoRA checkpoint that is not compatible in Diffusers ...": diffusers' LoRA
  readers drop kohya / LyCORIS `dora_scale` keys; the pack's LoRA loader puts them back (`adapters.lora`),
  so the line would say the opposite of what happens (magnitudes it cannot place are listed by the node).

All are plain `logger.warning` calls (never cached, unlike `warning_once`), on diffusers' module loggers,
which do not propagate to ComfyUI's handlers; a filter on each of those loggers drops exactly these
records, and only while `known_benign_diffusers_lines_hidden()` is active in the running thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator

KNOWN_BENIGN = {  # logger -> a pattern its known-benign records start with
    "diffusers.guiders.guider_utils": re.escape("Guiders are currently an experimental feature"),
    "diffusers.modular_pipelines.modular_pipeline_utils": re.escape("Component was not created using `ComponentSpec`"),
    "diffusers.models.modeling_utils": r"There are modules in \w+ that should be kept in float32: \[\]\.",
    "diffusers.loaders.lora_pipeline": re.escape("It seems like you are using a DoRA checkpoint"),
}

_hiding: contextvars.ContextVar[bool] = contextvars.ContextVar("mdiff_hiding_benign_lines", default=False)


class KnownBenignFilter(logging.Filter):
    """Drops records that start with `pattern` while the pack hides known-benign lines."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_hiding.get() and self.pattern.match(str(record.msg)))


def install_filters() -> None:
    """Once per logger: a second call adds no second filter."""
    for name, pattern in KNOWN_BENIGN.items():
        logger = logging.getLogger(name)
        if not any(isinstance(existing, KnownBenignFilter) for existing in logger.filters):
            logger.addFilter(KnownBenignFilter(pattern))


@contextlib.contextmanager
def known_benign_diffusers_lines_hidden() -> Iterator[None]:
    install_filters()
    token = _hiding.set(True)
    try:
        yield
    finally:
        _hiding.reset(token)
