"""KServe v2 gRPC `inference.GRPCInferenceService`: typed `contents` or `raw_input_contents` in,
`raw_output_contents` out (as OVMS and Triton answer); `ModelStreamInfer` streams."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from servables.errors import InvalidRequest, ModelNotFound, ServingError
from servables.tensor import datatype_of_array

from .. import tensor_codec as codec
from .. import tensor_service as service
from ..error_policy import is_server_fault
from . import kserve_v2_pb2 as pb
from . import kserve_v2_pb2_grpc as pb_grpc
from .status import rpc

log = logging.getLogger(__name__)

STREAM_IN_FLIGHT = 16  # requests of one ModelStreamInfer stream running at once

# KServe datatype -> InferTensorContents field
CONTENTS_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
                  "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
                  "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
                  "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _tensor_metadata(infos) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [pb.ModelMetadataResponse.TensorMetadata(name=t.name, datatype=t.datatype, shape=t.shape) for t in infos]


def decode_inputs(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    raw = request.raw_input_contents  # indexed, never copied into a list: protobuf containers are slow to copy
    tensors = request.inputs
    if raw and len(raw) != len(tensors):
        raise InvalidRequest(f"raw_input_contents has {len(raw)} entries for {len(tensors)} inputs; "
                             "either all inputs or none use raw_input_contents", "raw_input_contents")
    inputs: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(tensors):
        name = tensor.name
        if name in inputs:
            raise InvalidRequest(f"Input {name!r} is given twice", name)
        shape = codec.check_shape(name, tensor.shape[:])  # a list; list() of a protobuf container costs more
        if raw:
            if tensor.HasField("contents"):
                raise InvalidRequest(f"Input {name!r} has both contents and raw_input_contents", name)
            inputs[name] = codec.array_from_raw(name, tensor.datatype, shape, raw[index])
            continue
        codec.numpy_dtype(name, tensor.datatype)
        field = CONTENTS_FIELD.get(tensor.datatype)
        if field is None:
            raise InvalidRequest(f"Input {name!r}: {tensor.datatype} data must be sent in raw_input_contents",
                                 name)
        inputs[name] = codec.array_from_list(name, tensor.datatype, shape, list(getattr(tensor.contents, field)))
    return inputs


class KServeServicer(pb_grpc.GRPCInferenceServiceServicer):
    api = "KServe"

    def __init__(self, manager: Any, metrics: Any = None):
        self.manager = manager
        self.metrics = metrics

    @rpc
    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    @rpc
    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.manager.is_ready())

    @rpc
    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name=service.SERVER_NAME, version=service.server_version(),
                                         extensions=service.EXTENSIONS)

    @rpc
    async def ModelReady(self, request, context):
        group = self.manager.get(request.name)
        if not service.serves_tensors(group):
            if request.version:
                raise ModelNotFound(request.name)
            return pb.ModelReadyResponse(ready=True)
        version = service.parse_version(request.version)
        return pb.ModelReadyResponse(ready=version is None or version in group.servable.versions())

    @rpc
    async def ModelMetadata(self, request, context):
        group = self.manager.get(request.name)
        if not service.serves_tensors(group):
            raise ModelNotFound(request.name)
        servable = service.resolve(self.manager, request.name, request.version).servable
        return pb.ModelMetadataResponse(name=servable.name, versions=[str(v) for v in group.servable.versions()],
                                        platform="OpenVINO", inputs=_tensor_metadata(servable.inputs),
                                        outputs=_tensor_metadata(servable.outputs))

    @rpc
    async def ModelInfer(self, request, context):
        deployment, inputs, requested = self._prepare(request)
        outputs = await service.infer(deployment, inputs)
        return _response(request, deployment, outputs, requested)

    def _prepare(self, request: pb.ModelInferRequest) -> tuple[Any, dict[str, np.ndarray], list[str]]:
        deployment = service.resolve(self.manager, request.model_name, request.model_version)
        inputs = decode_inputs(request)
        requested = [out.name for out in request.outputs] if request.outputs else []
        service.check_requested_outputs(deployment, requested)
        return deployment, inputs, requested

    async def ModelStreamInfer(self, request_iterator, context) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Bidirectional streaming. Up to `STREAM_IN_FLIGHT` requests of a stream run at once and are
        answered in the order they came; a pipeline whose last Python node yields answers one request
        with one response per `yield`. An error answers that request with `error_message` (as
        Triton's stream does) and the stream goes on."""
        answers: asyncio.Queue[asyncio.Queue | None] = asyncio.Queue(STREAM_IN_FLIGHT)
        tasks: set[asyncio.Task] = set()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    replies: asyncio.Queue = asyncio.Queue()
                    task = asyncio.create_task(self._answer(request, replies))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    await answers.put(replies)  # waits while STREAM_IN_FLIGHT answers are pending
            finally:
                await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (replies := await answers.get()) is not None:
                while (message := await replies.get()) is not None:
                    yield message
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()

    async def _answer(self, request: pb.ModelInferRequest, replies: asyncio.Queue) -> None:
        """The responses to one request of a stream, then None."""
        try:
            deployment, inputs, requested = self._prepare(request)
            async for outputs in service.stream(deployment, inputs):
                replies.put_nowait(pb.ModelStreamInferResponse(
                    infer_response=_response(request, deployment, outputs, requested)))
        except ServingError as exc:
            if is_server_fault(exc):
                log.error("ModelStreamInfer %s: %s", request.model_name, exc.message)
            replies.put_nowait(_stream_error(request, exc.message))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours: this request fails, the stream goes on
            log.exception("ModelStreamInfer %s: unhandled error", request.model_name)
            replies.put_nowait(_stream_error(request, "Internal server error"))
        finally:
            replies.put_nowait(None)


def _stream_error(request: pb.ModelInferRequest, message: str) -> pb.ModelStreamInferResponse:
    return pb.ModelStreamInferResponse(error_message=message,
                                       infer_response=pb.ModelInferResponse(model_name=request.model_name,
                                                                            id=request.id))

def _response(request: pb.ModelInferRequest, deployment: Any, outputs: dict[str, np.ndarray],
              requested: list[str]) -> pb.ModelInferResponse:
    servable = deployment.servable
    names = requested or list(outputs)
    arrays = [outputs[name] for name in names]
    key = (servable.name, servable.version, tuple(names), tuple((a.dtype, a.shape) for a in arrays))
    template = _TEMPLATES.get(key)
    if template is None:
        template = _template(servable.name, servable.version, names, arrays)
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[key] = template
    response = pb.ModelInferResponse()
    response.CopyFrom(template)
    if request.id:
        response.id = request.id
    response.raw_output_contents.extend([codec.array_to_raw(array) for array in arrays])
    return response


def _template(name: str, version: int, names: list[str], arrays: list[np.ndarray]) -> pb.ModelInferResponse:
    """Everything of a response but its id and data: the same for every request of one output shape."""
    template = pb.ModelInferResponse(model_name=name, model_version=str(version))
    for output, array in zip(names, arrays, strict=True):
        template.outputs.add(name=output, datatype=datatype_of_array(array), shape=list(array.shape))
    return template


# (model, version, output names, (dtype, shape) per output) -> response template; copying one
# costs less than building the output metadata message by message on every call
_TEMPLATES: dict[tuple, pb.ModelInferResponse] = {}
_MAX_TEMPLATES = 1024
