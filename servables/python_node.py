"""Python nodes: a user's class run as one node of a pipeline (OVMS docs/python_support/reference.md).

The file at `handler_path` defines `class OvmsPythonModel` with OVMS's contract:

    class OvmsPythonModel:
        def initialize(self, kwargs): ...     # once, at load: node_name, base_path, input_names,
                                              # output_names, handler_path and the node's `params`
        def execute(self, inputs): ...        # per request: a list of named tensors in, a list out
        def finalize(self): ...               # once, at unload

A tensor is a numpy array with a `name` (`Tensor(name, data)`; `from pyovms import Tensor` works as in
OVMS); `execute` may also return a dict name -> array. When `execute` is a generator, each `yield`
is one partial result, streamed to the client over KServe gRPC `ModelStreamInfer`.

Isolation: the class runs in this process. An exception in `execute` (`SystemExit` included) fails
that request only (500 naming the node, traceback in the log); one in `initialize` is a load error
of the pipeline. Code that kills the process (`os._exit`, a crash in a C extension) is not contained.
Unary `execute` calls of one node are serialised (a lock), so a handler need not be thread-safe.
"""
from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InferenceError, InvalidRequest, ModelLoadError
from .pipeline_def import NodeDef

log = logging.getLogger(__name__)

CLASS_NAME = "OvmsPythonModel"


class Tensor(np.ndarray):
    """A numpy array with a name: what `execute` receives and returns."""

    name: str

    def __new__(cls, name: str, data: Any) -> Tensor:
        array = np.asarray(data)
        if array.dtype == object:
            array = array.astype(np.bytes_)
        tensor = array.view(cls)
        tensor.name = name
        return tensor

    def __array_finalize__(self, obj: Any) -> None:
        self.name = getattr(obj, "name", "")


def _install_pyovms_alias() -> None:
    """`from pyovms import Tensor` in handlers written for OVMS."""
    if "pyovms" not in sys.modules:
        module = types.ModuleType("pyovms")
        module.Tensor = Tensor  # type: ignore[attr-defined]
        sys.modules["pyovms"] = module


def _plain(array: Any) -> np.ndarray:
    result = np.asarray(array)
    return result.view(np.ndarray) if isinstance(result, Tensor) else result


class PythonNode:
    """One loaded handler instance."""

    def __init__(self, node: NodeDef, handler: Any, streams: bool):
        self.node = node
        self.handler = handler
        self.streams = streams  # execute is a generator
        self._lock = threading.Lock()

    @classmethod
    def load(cls, node: NodeDef, handler_path: Path) -> PythonNode:
        if not handler_path.is_file():
            raise ModelLoadError(f"handler_path {handler_path} does not exist")
        _install_pyovms_alias()
        module_name = f"genai_gateway_python_node_{abs(hash((str(handler_path), node.name)))}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, handler_path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            handler_class = getattr(module, CLASS_NAME)
        except AttributeError as exc:
            raise ModelLoadError(f"{handler_path} defines no class {CLASS_NAME}") from exc
        except Exception as exc:
            log.exception("python node %s: importing %s failed", node.name, handler_path)
            raise ModelLoadError(f"importing {handler_path} failed: {type(exc).__name__}: {exc}") from exc
        try:
            handler = handler_class()
            initialize = getattr(handler, "initialize", None)
            if initialize is not None:
                initialize({"node_name": node.name, "handler_path": str(handler_path),
                            "base_path": str(handler_path.parent), "input_names": list(node.inputs),
                            "output_names": list(node.outputs.values()), **node.params})
        except Exception as exc:
            log.exception("python node %s: initialize failed", node.name)
            raise ModelLoadError(f"{CLASS_NAME}.initialize failed: {type(exc).__name__}: {exc}") from exc
        streams = inspect.isgeneratorfunction(getattr(handler, "execute", None))
        log.info("python node %s: %s loaded from %s%s", node.name, CLASS_NAME, handler_path,
                 " (streams its outputs)" if streams else "")
        return cls(node, handler, streams)

    def _tensors(self, inputs: dict[str, np.ndarray]) -> list[Tensor]:
        return [Tensor(name, array) for name, array in inputs.items()]

    def _outputs(self, result: Any) -> dict[str, np.ndarray]:
        """A list of named tensors, or a dict name -> array, as plain arrays by name."""
        if isinstance(result, dict):
            return {str(name): _plain(value) for name, value in result.items()}
        if isinstance(result, (list, tuple)):
            outputs = {}
            for item in result:
                name = getattr(item, "name", None)
                if not isinstance(name, str) or not name:
                    raise InferenceError(f"{CLASS_NAME}.execute returned a tensor without a name; "
                                         "return Tensor(name, data) objects or a dict")
                outputs[name] = _plain(item)
            return outputs
        raise InferenceError(f"{CLASS_NAME}.execute returned {type(result).__name__}; "
                             "expected a list of Tensor(name, data) or a dict name -> array")

    def execute(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call of the user's `execute` (runs in a worker thread)."""
        if self.streams:
            raise InvalidRequest(f"node {self.node.name!r} streams its outputs (execute is a generator): "
                                 "call this pipeline with KServe gRPC ModelStreamInfer")
        with self._lock:
            try:
                result = self.handler.execute(self._tensors(inputs))
            except BaseException as exc:  # SystemExit too: user code never ends the server
                log.exception("python node %s: execute raised", self.node.name)
                raise InferenceError(f"{CLASS_NAME}.execute raised {type(exc).__name__}: {exc}") from exc
        return self._outputs(result)

    def iterate(self, inputs: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """The results of a generator `execute`, one per `yield`; closing it closes the user's generator."""
        try:
            results = self.handler.execute(self._tensors(inputs))
        except BaseException as exc:
            log.exception("python node %s: execute raised", self.node.name)
            raise InferenceError(f"{CLASS_NAME}.execute raised {type(exc).__name__}: {exc}") from exc
        return self._wrap(results)

    def _wrap(self, results: Iterator[Any]) -> Iterator[dict[str, np.ndarray]]:
        try:
            while True:
                try:
                    item = next(results)
                except StopIteration:
                    return
                except BaseException as exc:
                    log.exception("python node %s: execute raised", self.node.name)
                    raise InferenceError(f"{CLASS_NAME}.execute raised {type(exc).__name__}: {exc}") from exc
                yield self._outputs(item)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def finalize(self) -> None:
        finalize = getattr(self.handler, "finalize", None)
        if finalize is None:
            return
        try:
            finalize()
        except Exception:
            log.exception("python node %s: finalize raised", self.node.name)
