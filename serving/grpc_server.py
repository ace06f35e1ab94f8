"""TF Serving's gRPC API (ModelService.GetModelStatus, PredictionService) on the official protos.

Servicers generated from `tensorflow-serving-api`, so any TF Serving client, TFX's
InfraValidator client included, talks to this server exactly as it would to the C++ one.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.model import ServingError, validate_metadata_request
from serving.repository import ModelRepository

LOG = logging.getLogger(__name__)
_STATES = get_model_status_pb2.ModelVersionStatus.State


def _abort(context: grpc.ServicerContext, error: ServingError):
    context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), error.message)


def _version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _label(model_spec) -> str | None:
    return model_spec.version_label if model_spec.HasField("version_label") else None


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def GetModelStatus(self, request, context):
        try:
            if not request.HasField("model_spec"):  # get_model_status_impl.cc:66-68
                raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
            rows = self.repository.status(request.model_spec.name, _version(request.model_spec))
        except ServingError as e:
            _abort(context, e)
        response = get_model_status_pb2.GetModelStatusResponse()
        for row in rows:
            status = response.model_version_status.add(version=row.version, state=_STATES.Value(row.state))
            status.status.error_code = row.error_code_number
            status.status.error_message = row.error_message
        return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def _call(self, method: str, request, context):
        try:
            if method == "metadata":
                if not request.HasField("model_spec"):  # get_model_metadata_impl.cc:76-80
                    raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
                validate_metadata_request(request)
            spec = request.model_spec
            model = self.repository.get(spec.name, _version(spec), _label(spec))
            return getattr(model, method)(request)
        except ServingError as e:
            LOG.info("%s refused: %s %s", method, e.code, e.message)
            _abort(context, e)

    def Predict(self, request, context):
        return self._call("predict", request, context)

    def Classify(self, request, context):
        return self._call("classify", request, context)

    def Regress(self, request, context):
        return self._call("regress", request, context)

    def GetModelMetadata(self, request, context):
        return self._call("metadata", request, context)


def start_grpc_server(repository: ModelRepository, host: str, port: int, workers: int = 16) -> tuple[grpc.Server, int]:
    """Start serving; returns the server and the bound port (port 0 picks a free one)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository), server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(repository), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    server.start()
    LOG.info("gRPC API on %s:%d", host, bound)
    return server, bound
