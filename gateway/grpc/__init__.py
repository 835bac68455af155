"""gRPC front end: KServe v2 `inference.GRPCInferenceService` and the TFS `PredictionService` /
`ModelService` on `grpc.aio`, in the same process and event loop as the REST server.

The `*_pb2*.py` modules are generated from the `.proto` files beside them (see README) and committed.
"""
