"""`layout` of a classic model (OVMS docs/shape_batch_size_and_layout.md).

`"NHWC:NCHW"` is `<layout the client sends>:<layout of the model>`: the server adds the transpose
(OpenVINO's PrePostProcessor), so a model trained in NCHW takes NHWC tensors. A single layout
(`"NCHW"`) only declares the model's layout. A string applies to the model's only input; an object
maps input or output names (or their `mapping_config.json` aliases) to layouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openvino as ov

from .errors import ModelLoadError


@dataclass(frozen=True)
class LayoutChange:
    exposed: str  # what clients see ("NHWC")
    model: str | None  # the model's own layout when it differs ("NCHW"), else None

    @classmethod
    def parse(cls, text: Any, where: str) -> LayoutChange:
        if not isinstance(text, str) or not text.strip():
            raise ModelLoadError(f"{where}: layout must be a string like \"NHWC:NCHW\" or \"NCHW\"")
        exposed, _, model = text.strip().partition(":")
        for part in (exposed, model):
            if part:
                try:
                    ov.Layout(part)
                except Exception as exc:
                    raise ModelLoadError(f"{where}: invalid layout {part!r}: {exc}") from exc
        return cls(exposed, model or None)


def parse_layouts(value: Any, inputs: list[str], outputs: list[str], aliases: dict[str, str],
                  where: str) -> dict[str, LayoutChange]:
    """The `layout` option as {real tensor name: change}; `aliases` maps mapping_config.json names back."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        if len(inputs) != 1:
            raise ModelLoadError(f"{where}: layout {value!r} is ambiguous for a model with {len(inputs)} inputs; "
                                 "give an object name -> layout")
        return {inputs[0]: LayoutChange.parse(value, where)}
    layouts = {}
    for name, text in value.items():
        real = aliases.get(name, name)
        if real not in inputs and real not in outputs:
            raise ModelLoadError(f"{where}: layout names {name!r}, which is not an input or output of the model")
        layouts[real] = LayoutChange.parse(text, f"{where}: layout of {name!r}")
    return layouts


def apply_layouts(model: ov.Model, layouts: dict[str, LayoutChange], where: str) -> ov.Model:
    """The model with the layouts declared and the transposes added; output names are kept."""
    if not layouts:
        return model
    from openvino.preprocess import PrePostProcessor

    output_names = [set(port.get_names()) for port in model.outputs]
    input_names = {n for port in model.inputs for n in port.get_names()}
    ppp = PrePostProcessor(model)
    try:
        for name, change in layouts.items():
            port = ppp.input(name) if name in input_names else ppp.output(name)
            if change.model is None:
                port.model().set_layout(ov.Layout(change.exposed))
            else:
                port.model().set_layout(ov.Layout(change.model))
                port.tensor().set_layout(ov.Layout(change.exposed))
        built = ppp.build()
    except Exception as exc:
        raise ModelLoadError(f"{where}: cannot apply layout {dict(layouts)}: {exc}") from exc
    for port, names in zip(built.outputs, output_names, strict=True):
        if names and not port.get_names():
            port.get_tensor().set_names(names)
    return built
