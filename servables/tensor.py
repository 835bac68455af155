"""Classic tensor servable: one version of an OpenVINO IR (`.xml/.bin`) or ONNX model.

Compiled with `openvino.Core`; the scheduler's tensor engine (scheduler/tensor_engine.py) runs it on
`nireq` infer requests, one worker thread each. Inputs arrive as numpy arrays keyed by input name;
`validate` checks names, datatypes and shapes and raises `InvalidRequest` naming the input (never a crash in OpenVINO).

Precision: the CPU plugin here defaults to bf16, which changes f32 results in the third digit.
Tensor models are numeric APIs, so the default `plugin_config` is `INFERENCE_PRECISION_HINT=f32`;
a user's `plugin_config` overrides it.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import openvino as ov

from .base import ModelSpec
from .binary_input import DEFAULT_MAX_IMAGE_SIZE, decode_batch, is_encoded_images
from .errors import InvalidRequest, ModelLoadError
from .model_formats import FORMATS, ModelFormat, format_of
from .tensor_layout import apply_layouts, parse_layouts
from .tensor_mapping import TensorMapping

log = logging.getLogger(__name__)

DEFAULT_PLUGIN_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}

# KServe datatype name <-> OpenVINO element type <-> numpy dtype ("BYTES" is a string tensor).
_TYPES: list[tuple[str, ov.Type, Any]] = [
    ("BOOL", ov.Type.boolean, np.bool_),
    ("UINT8", ov.Type.u8, np.uint8),
    ("UINT16", ov.Type.u16, np.uint16),
    ("UINT32", ov.Type.u32, np.uint32),
    ("UINT64", ov.Type.u64, np.uint64),
    ("INT8", ov.Type.i8, np.int8),
    ("INT16", ov.Type.i16, np.int16),
    ("INT32", ov.Type.i32, np.int32),
    ("INT64", ov.Type.i64, np.int64),
    ("FP16", ov.Type.f16, np.float16),
    ("FP32", ov.Type.f32, np.float32),
    ("FP64", ov.Type.f64, np.float64),
    ("BYTES", ov.Type.string, np.bytes_),
]
DATATYPE_TO_NUMPY: dict[str, Any] = {name: np.dtype(dt) for name, _, dt in _TYPES}
_OV_TO_DATATYPE = {ov_type.get_type_name(): name for name, ov_type, _ in _TYPES}
_DATATYPE_OF_DTYPE: dict[np.dtype, str] = {dtype: name for name, dtype in DATATYPE_TO_NUMPY.items()}


def datatype_of_array(array: np.ndarray) -> str:
    """The KServe datatype name of a numpy array (string arrays are BYTES)."""
    name = _DATATYPE_OF_DTYPE.get(array.dtype)  # one hash lookup: this runs for every tensor of every request
    if name is not None:
        return name
    if array.dtype.kind in ("S", "U", "O"):
        return "BYTES"
    return str(array.dtype).upper()


@dataclass(frozen=True)
class TensorInfo:
    """Metadata of one model input or output; -1 marks a dynamic dimension."""

    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class TensorOptions:
    batch_size: int | str | None = None
    shape: Any = None
    nireq: int = 0
    target_device: str = "CPU"
    plugin_config: dict[str, Any] | None = None
    max_queue_size: int = 1024
    layout: Any = None  # "NHWC:NCHW" or {name: layout} (servables/tensor_layout.py)
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE  # binary (encoded image) inputs: pixels per side

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> TensorOptions:
        batch = options.get("batch_size")
        if batch is not None and batch != "auto" and not (isinstance(batch, int) and batch >= 0):
            batch = str(batch)
            if not (batch.isascii() and batch.isdigit()):
                raise ModelLoadError(f"batch_size must be an integer >= 0 or \"auto\", got {batch!r}")
            batch = int(batch)
        nireq = options.get("nireq") or 0
        if not isinstance(nireq, int) or nireq < 0:
            raise ModelLoadError(f"nireq must be an integer >= 0, got {nireq!r}")
        plugin = options.get("plugin_config") or {}
        if not isinstance(plugin, dict):
            raise ModelLoadError("plugin_config must be a JSON object")
        return cls(batch_size=batch or None, shape=options.get("shape"), nireq=nireq,
                   target_device=options.get("target_device") or options.get("device") or "CPU",
                   plugin_config={**DEFAULT_PLUGIN_CONFIG, **{k: str(v) if isinstance(v, bool) else v
                                                              for k, v in plugin.items()}},
                   max_queue_size=int(options.get("max_queue_size") or 1024), layout=options.get("layout"),
                   max_image_size=int(options.get("max_image_size") or DEFAULT_MAX_IMAGE_SIZE))


def parse_shape(text: Any) -> ov.PartialShape:
    """`"(1,3,224,224)"`, `"[1,-1]"`, `"1:10"` ranges, or a JSON list -> PartialShape."""
    if isinstance(text, (list, tuple)):
        parts = [str(d) for d in text]
    else:
        inner = str(text).strip().strip("()[]")
        parts = [p.strip() for p in re.split(r"[,\s]+", inner) if p.strip()]
    dims = []
    for part in parts:
        if ":" in part:
            low, high = part.split(":", 1)
            dims.append(ov.Dimension(int(low), int(high)))
        else:
            dims.append(ov.Dimension(int(part)) if int(part) >= 0 else ov.Dimension())
    return ov.PartialShape(dims)


def find_model_file(path: Path) -> tuple[ModelFormat, Path]:
    """The model inside a version directory (or `path` itself when it is a model file): its
    format and what OpenVINO reads (servables/model_formats.py)."""
    found = format_of(path)
    if found is None:
        raise ModelLoadError(f"No model in {path}: expected one of " + ", ".join(
            f"{f.name} ({f.pattern})" for f in FORMATS))
    return found


def _first_line(exc: Exception) -> str:
    """OpenVINO's messages start with C++ source locations; keep the first line that says something."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.startswith(("Exception from", "Check '"))]
    return lines[0] if lines else str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _shape_list(partial: ov.PartialShape) -> list[int]:
    if partial.rank.is_dynamic:
        return [-1]
    return [d.get_length() if d.is_static else -1 for d in partial]


def _port_name(port: Any, fallback: str) -> str:
    names = port.get_names()
    return port.any_name if names else fallback


class TensorServable:
    """One version of a classic model (kind "tensor"); loaded by `TensorModel` per version."""

    _core: ClassVar[ov.Core | None] = None
    _core_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = TensorOptions.from_dict(spec.options)
        self.model: ov.Model | None = None
        self.compiled: ov.CompiledModel | None = None
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        self._input_ports: dict[str, ov.PartialShape] = {}  # by the model's own tensor name
        self._fits: dict[tuple[str, tuple[int, ...]], bool] = {}  # (input, shape) -> the port takes it
        self._real_names: dict[str, str] = {}  # exposed input name (mapping_config.json alias) -> tensor name
        self._layouts: dict[str, str] = {}  # tensor name -> the layout clients use
        self.mapping = TensorMapping()
        self.auto_shape = False
        self.model_info: dict[str, str] = {}  # the IR's rt_info model_info, passed through in metadata

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version or 1

    @classmethod
    def core(cls) -> ov.Core:
        with cls._core_lock:
            if cls._core is None:
                cls._core = ov.Core()
            return cls._core

    # --- loading --------------------------------------------------------------------------

    def load(self) -> None:
        model_format, model_file = find_model_file(self.spec.base_path)
        try:
            self.model = self.core().read_model(str(model_file))
        except Exception as exc:
            raise ModelLoadError(f"{self.name} v{self.version}: cannot read the {model_format.name} model "
                                 f"{model_file}: {_first_line(exc)}") from exc
        self.model_info = self._read_model_info()
        self.mapping = TensorMapping.read(self.spec.base_path)
        self._apply_layouts()
        self._apply_shape_options()
        self._compile()

    def _apply_layouts(self) -> None:
        inputs = [port.any_name for port in self.model.inputs if port.get_names()]
        outputs = [name for port in self.model.outputs for name in port.get_names()]
        layouts = parse_layouts(self.options.layout, inputs, outputs, self.mapping.aliases(),
                                f"{self.name} v{self.version}")
        self.model = apply_layouts(self.model, layouts, f"{self.name} v{self.version}")
        self._layouts = {name: change.exposed for name, change in layouts.items()}

    def _read_model_info(self) -> dict[str, str]:
        if not self.model.has_rt_info("model_info"):
            return {}
        try:
            return {k: str(v.astype(str)) for k, v in self.model.get_rt_info("model_info").astype(dict).items()}
        except Exception:  # an rt_info layout we do not understand is not worth failing the load
            return {}

    def _apply_shape_options(self) -> None:
        shape, batch = self.options.shape, self.options.batch_size
        self.auto_shape = shape == "auto" or (shape is None and batch == "auto")
        if shape is not None and shape != "auto":
            if isinstance(shape, dict):
                aliases = self.mapping.aliases()
                targets = {aliases.get(name, name): parse_shape(s) for name, s in shape.items()}
            else:
                if len(self.model.inputs) != 1:
                    raise ModelLoadError(f"{self.name}: shape {shape!r} is ambiguous for a model with "
                                         f"{len(self.model.inputs)} inputs; give an object input -> shape")
                targets = {self.model.inputs[0].any_name: parse_shape(shape)}
            self._reshape(targets)
        elif isinstance(batch, int):
            targets = {}
            for port in self.model.inputs:
                partial = port.get_partial_shape()
                if partial.rank.is_static and partial.rank.get_length() > 0:
                    dims = list(partial)
                    dims[0] = ov.Dimension(batch)
                    targets[port.any_name] = ov.PartialShape(dims)
            self._reshape(targets)

    def _reshape(self, targets: dict[str, ov.PartialShape]) -> None:
        names = {n for port in self.model.inputs for n in port.get_names()}
        unknown = set(targets) - names
        if unknown:
            raise ModelLoadError(f"{self.name}: shape names unknown inputs {sorted(unknown)}")
        try:
            self.model.reshape(targets)
        except Exception as exc:
            raise ModelLoadError(f"{self.name} v{self.version}: reshape failed: {exc}") from exc

    def _compile(self) -> None:
        try:
            self.compiled = self.core().compile_model(self.model, self.options.target_device,
                                                      self.options.plugin_config)
        except Exception as exc:
            raise ModelLoadError(f"{self.name} v{self.version}: cannot compile on "
                                 f"{self.options.target_device}: {exc}") from exc
        self.inputs, self._input_ports, self._fits = [], {}, {}
        self._real_names = {}
        for k, port in enumerate(self.compiled.inputs):
            name = _port_name(port, f"input_{k}")
            partial = port.get_partial_shape()
            self._input_ports[name] = partial
            exposed = self.mapping.inputs.get(name, name)
            self._real_names[exposed] = name
            self.inputs.append(TensorInfo(exposed, self._datatype(port.get_element_type()), _shape_list(partial)))
        self.outputs = []
        for k, port in enumerate(self.compiled.outputs):
            name = _port_name(port, f"output_{k}")
            self.outputs.append(TensorInfo(self.mapping.outputs.get(name, name),
                                           self._datatype(port.get_element_type()),
                                           _shape_list(port.get_partial_shape())))

    @staticmethod
    def _datatype(element_type: ov.Type) -> str:
        return _OV_TO_DATATYPE.get(element_type.get_type_name(), element_type.get_type_name().upper())

    @property
    def nireq(self) -> int:
        if self.options.nireq:
            return self.options.nireq
        try:
            return max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:
            return 1

    def close(self) -> None:
        self.compiled = None
        self.model = None

    # --- requests -------------------------------------------------------------------------

    def validate(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check a request's inputs against the model (decoding binary images); returns them in
        model order, keyed by the model's own tensor names."""
        if len(inputs) != len(self.inputs):
            raise InvalidRequest(
                f"Invalid number of inputs - Expected: {len(self.inputs)}; Actual: {len(inputs)}", "inputs")
        ordered: dict[str, np.ndarray] = {}
        for info in self.inputs:
            if info.name not in inputs:
                unexpected = sorted(set(inputs) - {i.name for i in self.inputs})
                raise InvalidRequest(f"Missing input {info.name!r}" + (
                    f"; unexpected input {unexpected[0]!r}" if unexpected else ""), info.name)
            array = inputs[info.name]
            real = self._real_names[info.name]
            if is_encoded_images(array, info.datatype, info.shape):
                array = decode_batch(info.name, array, info.datatype, info.shape, self._layouts.get(real),
                                     DATATYPE_TO_NUMPY[info.datatype], self.options.max_image_size)
            actual_type = datatype_of_array(array)
            if actual_type != info.datatype:
                raise InvalidRequest(f"Invalid input precision for {info.name!r} - Expected: {info.datatype}; "
                                     f"Actual: {actual_type}", info.name)
            if not self.auto_shape and not self._shape_fits(real, array.shape):
                raise InvalidRequest(f"Invalid input shape for {info.name!r} - Expected: {self.shape_text(info)}; "
                                     f"Actual: {list(array.shape)}", info.name)
            ordered[real] = array
        return ordered

    def _shape_fits(self, real: str, shape: tuple[int, ...]) -> bool:
        """Whether compiled input `real` takes `shape`; remembered per shape (a request path saving:
        building an `ov.PartialShape` costs more than the rest of the check)."""
        key = (real, tuple(shape))
        fits = self._fits.get(key)
        if fits is None:
            fits = self._input_ports[real].compatible(ov.PartialShape(list(shape)))
            if len(self._fits) < 256:
                self._fits[key] = fits
        return fits

    @staticmethod
    def shape_text(info: TensorInfo) -> str:
        return "[" + ",".join(str(d) for d in info.shape) + "]"

    def needs_reshape(self, inputs: dict[str, np.ndarray]) -> bool:
        """With `shape: auto`, a request whose shapes the compiled model cannot take needs a reshape."""
        return self.auto_shape and any(
            not self._input_ports[name].compatible(ov.PartialShape(list(array.shape)))
            for name, array in inputs.items())

    def reshape_to(self, inputs: dict[str, np.ndarray]) -> None:
        """Reshape and recompile for these input shapes (called by the engine with no request in flight)."""
        log.info("%s v%d: reshaping to %s", self.name, self.version,
                 {name: list(a.shape) for name, a in inputs.items()})
        try:
            self.model.reshape({name: ov.PartialShape(list(a.shape)) for name, a in inputs.items()})
        except Exception as exc:
            raise InvalidRequest(f"Cannot reshape the model to the request's shapes: {exc}", "inputs") from exc
        self._compile()

    def output_arrays(self, request: ov.InferRequest) -> dict[str, np.ndarray]:
        """Copy the outputs of a finished infer request (strings as bytes arrays)."""
        result: dict[str, np.ndarray] = {}
        for k, info in enumerate(self.outputs):
            tensor = request.get_output_tensor(k)
            if info.datatype == "BYTES":
                result[info.name] = np.array(tensor.bytes_data, dtype=object).reshape(list(tensor.shape))
            else:
                result[info.name] = tensor.data.copy()
        return result

    def describe(self) -> dict[str, Any]:
        return {"version": self.version}
