"""TensorFlow Serving gRPC: `PredictionService.Predict` / `GetModelMetadata` and `ModelService.GetModelStatus`.

Inputs are `TensorProto`s in any encoding TF clients send (`tensor_content`, or the typed `*_val`
fields, a single value broadcast to the shape); outputs use `tensor_content` (`string_val` for strings).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from servables.errors import InvalidRequest
from servables.tensor import TensorInfo, datatype_of_array

from .. import tensor_codec as codec
from .. import tensor_service as service
from . import tf_framework_pb2 as tf
from . import tfs_apis_pb2 as pb
from . import tfs_apis_pb2_grpc as pb_grpc
from .status import rpc

# KServe datatype <-> tensorflow.DataType
TF_DTYPE = {"BOOL": tf.DT_BOOL, "UINT8": tf.DT_UINT8, "UINT16": tf.DT_UINT16, "UINT32": tf.DT_UINT32,
            "UINT64": tf.DT_UINT64, "INT8": tf.DT_INT8, "INT16": tf.DT_INT16, "INT32": tf.DT_INT32,
            "INT64": tf.DT_INT64, "FP16": tf.DT_HALF, "FP32": tf.DT_FLOAT, "FP64": tf.DT_DOUBLE,
            "BYTES": tf.DT_STRING}
DATATYPE_OF_TF = {v: k for k, v in TF_DTYPE.items()}
VAL_FIELD = {"BOOL": "bool_val", "UINT8": "int_val", "UINT16": "int_val", "INT8": "int_val",
             "INT16": "int_val", "INT32": "int_val", "INT64": "int64_val", "UINT32": "uint32_val",
             "UINT64": "uint64_val", "FP16": "half_val", "FP32": "float_val", "FP64": "double_val",
             "BYTES": "string_val"}


def _shape(info: TensorInfo) -> tf.TensorShapeProto:
    return tf.TensorShapeProto(dim=[tf.TensorShapeProto.Dim(size=d) for d in info.shape])


MAX_FILLED_ELEMENTS = 2**24  # a one-value tensor proto expands on the server: bound what a few bytes can ask for


def tensor_to_array(name: str, proto: tf.TensorProto) -> np.ndarray:
    datatype = DATATYPE_OF_TF.get(proto.dtype)
    if datatype is None:
        raise InvalidRequest(f"Input {name!r}: unsupported dtype {tf.DataType.Name(proto.dtype)}", name)
    shape = codec.check_shape(name, [d.size for d in proto.tensor_shape.dim])
    count = codec.element_count(shape)
    if proto.tensor_content and datatype != "BYTES":
        return codec.array_from_raw(name, datatype, shape, proto.tensor_content)
    values = list(getattr(proto, VAL_FIELD[datatype]))
    if len(values) == 1 and count > 1:  # TensorFlow fills the tensor with a single given value
        if count > MAX_FILLED_ELEMENTS:
            raise InvalidRequest(f"Input {name!r}: shape {shape} is too large to fill from one value "
                                 f"(at most {MAX_FILLED_ELEMENTS} elements)", name)
        values = values * count
    if datatype == "BYTES":
        if len(values) != count:
            raise InvalidRequest(f"Input {name!r}: shape {shape} needs {count} elements, got {len(values)}", name)
        return codec.bytes_array(values, shape)
    if datatype == "FP16":
        if len(values) != count:
            raise InvalidRequest(f"Input {name!r}: shape {shape} needs {count} elements, got {len(values)}", name)
        return np.array(values, dtype=np.uint16).view(np.float16).reshape(shape)
    return codec.array_from_list(name, datatype, shape, values)


def array_to_tensor(array: np.ndarray) -> tf.TensorProto:
    datatype = datatype_of_array(array)
    proto = tf.TensorProto(dtype=TF_DTYPE.get(datatype, tf.DT_INVALID),
                           tensor_shape=tf.TensorShapeProto(dim=[tf.TensorShapeProto.Dim(size=d)
                                                                 for d in array.shape]))
    if datatype == "BYTES":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    return proto


class TFSServicer(pb_grpc.PredictionServiceServicer):
    api = "TensorFlowServing"

    def __init__(self, manager: Any, metrics: Any = None):
        self.manager = manager
        self.metrics = metrics

    def _resolve(self, spec: pb.ModelSpec):
        if spec.HasField("version_label"):
            raise InvalidRequest("version_label is not supported; use version", "version_label")
        version = spec.version.value if spec.HasField("version") else None
        return service.resolve(self.manager, spec.name, version)

    def _spec(self, deployment) -> pb.ModelSpec:
        spec = pb.ModelSpec(name=deployment.servable.name, signature_name="serving_default")
        spec.version.value = deployment.servable.version
        return spec

    @rpc
    async def Predict(self, request, context):
        deployment = self._resolve(request.model_spec)
        inputs = {name: tensor_to_array(name, proto) for name, proto in request.inputs.items()}
        requested = list(request.output_filter)
        service.check_requested_outputs(deployment, requested)
        outputs = await service.infer(deployment, inputs)
        response = pb.PredictResponse(model_spec=self._spec(deployment))
        for name in requested or list(outputs):
            response.outputs[name].CopyFrom(array_to_tensor(outputs[name]))
        return response

    @rpc
    async def GetModelMetadata(self, request, context):
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise InvalidRequest("metadata_field must be ['signature_def']", "metadata_field")
        deployment = self._resolve(request.model_spec)
        servable = deployment.servable
        signature = tf.SignatureDef(method_name="tensorflow/serving/predict")
        for target, infos in ((signature.inputs, servable.inputs), (signature.outputs, servable.outputs)):
            for info in infos:
                target[info.name].CopyFrom(tf.TensorInfo(name=info.name, dtype=TF_DTYPE.get(info.datatype, 0),
                                                         tensor_shape=_shape(info)))
        signatures = pb.SignatureDefMap()
        signatures.signature_def["serving_default"].CopyFrom(signature)
        response = pb.GetModelMetadataResponse(model_spec=self._spec(deployment))
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelStatusServicer(pb_grpc.ModelServiceServicer):
    api = "TensorFlowServing"

    def __init__(self, manager: Any, metrics: Any = None):
        self.manager = manager
        self.metrics = metrics

    @rpc
    async def GetModelStatus(self, request, context):
        spec = request.model_spec
        if spec.HasField("version"):
            versions = [service.resolve(self.manager, spec.name, spec.version.value).servable.version]
        else:
            group = self.manager.get(spec.name)
            if not service.serves_tensors(group):
                versions = [1]
            else:
                versions = group.servable.versions()
        return pb.GetModelStatusResponse(model_version_status=[
            pb.ModelVersionStatus(version=v, state=pb.ModelVersionStatus.AVAILABLE,
                                  status=pb.StatusProto(error_code=0, error_message="OK")) for v in versions])
