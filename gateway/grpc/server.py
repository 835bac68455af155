"""Start the gRPC server (KServe v2 + TFS) on `grpc.aio` in the running event loop."""
from __future__ import annotations

import logging
from typing import Any

import grpc

from . import kserve_v2_pb2_grpc, tfs_apis_pb2_grpc
from .kserve_service import KServeServicer
from .tfs_service import ModelStatusServicer, TFSServicer

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1024 * 1024 * 1024  # 1 GiB, as OVMS


async def start_grpc_server(manager: Any, host: str, port: int, metrics: Any = None) -> grpc.aio.Server:
    """`metrics`: the gateway's Metrics recorder (or None when metrics are off)."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
    kserve_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(KServeServicer(manager, metrics), server)
    tfs_apis_pb2_grpc.add_PredictionServiceServicer_to_server(TFSServicer(manager, metrics), server)
    tfs_apis_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(manager, metrics), server)
    address = f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot bind the gRPC port {address}")
    await server.start()
    log.info("gRPC (KServe v2, TensorFlow Serving) on %s", address)
    return server
