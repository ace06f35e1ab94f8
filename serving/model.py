"""One loaded model version, answering Predict, Classify, Regress and GetModelMetadata as
TensorFlow Serving's C++ server does.

TF Serving loads a SavedModel into a TF1 Session (the MetaGraph tagged exactly {"serve"})
and runs every request as `Session::Run(feeds by the signature's tensor names, fetches)`.
This does the same through TensorFlow's own session (the C++ DirectSession, called
without the Python client's feed conversion), so dtype and shape errors, op errors and
their texts come from the same runtime. The request checks around the run follow
tensorflow_serving/servables/tensorflow/predict_util.cc, classifier.cc, regressor.cc and
util.cc; each check cites the line it follows. The gRPC servicer, the REST handler and
warm-up replay all call this class.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl  # the SavedModel proto, as TF Serving reads it
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    input_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

LOG = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAGS = frozenset({"serve"})
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"  # signature_constants
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # WarmupConsts::kMaxNumRecords (servables/tensorflow/saved_model_warmup_util.h:33)
_CODE_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


class ServingError(Exception):
    """A request TF Serving refuses; `code` is the canonical status name (INVALID_ARGUMENT...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:  # absl::Status::ToString, as TF Serving nests statuses in messages
        return f"{self.code}: {self.message}"


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def dtype_string(dtype: int) -> str:
    """tensorflow::DataTypeString ("float", "string", "int64"...)."""
    names = {types_pb2.DT_FLOAT: "float", types_pb2.DT_HALF: "half"}
    return names.get(dtype) or tf.as_dtype(dtype).name


def shape_debug_string(shape) -> str:
    """TensorShape::DebugString: "[2,3]"."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def serve_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef whose tag set is exactly {"serve"} (what TF Serving loads by default)."""
    saved_model = loader_impl.parse_saved_model(path)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == SERVE_TAGS:
            return meta_graph
    tags = [list(m.meta_info_def.tags) for m in saved_model.meta_graphs]
    raise ServingError(
        "NOT_FOUND",
        f"Could not find meta graph def matching supplied tags: {{ serve }}. Available tags: {tags} ({path})",
    )


def serialized_examples(model_input: input_pb2.Input) -> list[bytes]:
    """InputToSerializedExampleTensor (util.cc:134-211): the examples, each preceded by the
    serialized context when there is one (so an example's own feature wins)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
    else:
        examples = []
    if not examples:
        raise invalid("Input is empty.")  # util.cc:166-168
    return examples


class LoadedModel:
    """A SavedModel version loaded with the serve tag into a session; answers like TF Serving."""

    def __init__(self, name: str, path: str, version: int, method_name_check: bool = False):
        self.name = name
        self.path = path
        self.version = version
        self.method_name_check = method_name_check
        self.meta_graph = serve_meta_graph(path)
        self.signature_defs = dict(self.meta_graph.signature_def)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            tf.compat.v1.saved_model.loader.load(self._session, list(SERVE_TAGS), path)
        self._outputs: dict[str, object] = {}  # tensor name -> TF_Output
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # -- running --------------------------------------------------------------------------------
    def _tf_output(self, tensor_name: str):
        found = self._outputs.get(tensor_name)
        if found is None:
            try:
                found = self._graph.get_tensor_by_name(tensor_name)._as_tf_output()
            except (KeyError, ValueError) as e:
                raise ServingError("INVALID_ARGUMENT", str(e)) from None
            with self._lock:
                self._outputs[tensor_name] = found
        return found

    def session_run(self, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
        """Session::Run with the C++ session's own checks (no Python-side conversion)."""
        feed = {self._tf_output(name): value for name, value in feeds.items()}
        try:
            return self._session._call_tf_sessionrun(None, feed, [self._tf_output(f) for f in fetches], [], None)
        except tf.errors.OpError as e:
            raise ServingError(_CODE_NAMES.get(e.error_code, "UNKNOWN"), e.message) from None

    # -- Predict (predict_util.cc) ----------------------------------------------------------------
    def predict_signature(self, signature_name: str) -> tuple[str, meta_graph_pb2.SignatureDef]:
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:  # predict_util.cc:87-91
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        signature = self.signature_defs[name]
        if self.method_name_check and signature.method_name not in (
            PREDICT_METHOD,
            CLASSIFY_METHOD,
            REGRESS_METHOD,
        ):  # predict_util.cc:38-49
            raise ServingError(
                "INTERNAL",
                (
                    f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, {CLASSIFY_METHOD}, "
                    f"{REGRESS_METHOD}}}. Was: {signature.method_name}"
                ),
            )
        return name, signature

    def run_predict(
        self, signature_name: str, inputs: dict[str, np.ndarray], output_filter: list[str] = ()
    ) -> tuple[str, dict[str, np.ndarray]]:
        """RunPredict on arrays already converted from the request's TensorProtos."""
        name, signature = self.predict_signature(signature_name)
        expected, sent = set(signature.inputs), set(inputs)
        if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
            raise invalid(  # predict_util.cc:51-73
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
            )
        feeds, seen = {}, set()
        for alias in sorted(signature.inputs):  # tensorflow/cc/saved_model/util.cc GetInputValues
            info = signature.inputs[alias]
            if alias in inputs:
                feeds[info.name] = inputs[alias]
                seen.add(alias)
            elif alias in signature.defaults:
                feeds[info.name] = tf.make_ndarray(signature.defaults[alias])
            else:
                raise invalid(
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no default "
                    f"value provided. Inputs expected to be in the request {{{','.join(sorted(inputs))}}}, or "
                    f"default input alias set: {','.join(sorted(signature.defaults))}"
                )
        if inputs and len(seen) != len(inputs):
            raise invalid(
                f"Inputs contains invalid name. Used request inputs: {','.join(sorted(seen))}, "
                f"request input: {','.join(sorted(inputs))}"
            )
        aliases = []
        for alias in output_filter:  # predict_util.cc:137-155
            if alias not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                    f"set {{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in aliases:
                raise invalid(f"duplicate output tensor alias: {alias}")
            aliases.append(alias)
        aliases = aliases or sorted(signature.outputs)
        values = self.session_run(feeds, [signature.outputs[a].name for a in aliases])
        return name, dict(zip(aliases, values))

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        inputs = {}
        for alias, proto in request.inputs.items():
            try:
                inputs[alias] = tf.make_ndarray(proto)
            except Exception:  # Tensor::FromProto failed (util.cc GetInputValues)
                raise invalid(f"tensor parsing error: {alias}") from None
        name, outputs = self.run_predict(request.model_spec.signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        self.fill_model_spec(response.model_spec, name)
        for alias, value in outputs.items():  # Tensor::AsProtoField: typed repeated fields
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
            _as_proto_field(response.outputs[alias], value)
        return response

    # -- Classify (classifier.cc) / Regress (regressor.cc) ----------------------------------------
    def _example_signature(self, signature_name: str, method: str) -> meta_graph_pb2.SignatureDef:
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:  # classifier.cc:157-161, regressor.cc:152-156
            raise invalid(f"No signature was found with the name: {name}")
        signature = self.signature_defs[name]
        kind = "classification" if method == CLASSIFY_METHOD else "regression"
        if self.method_name_check and signature.method_name != method:  # classifier.cc:162-167
            raise invalid(f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")
        check_example_signature(signature, method)
        return signature

    def classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        signature = self._example_signature(request.model_spec.signature_name, CLASSIFY_METHOD)
        response = classification_pb2.ClassificationResponse()
        self.fill_model_spec(response.model_spec, request.model_spec.signature_name)  # classifier.cc:340-342
        examples = serialized_examples(request.input)
        fetch = [a for a in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if a in signature.outputs]
        values = dict(
            zip(
                fetch,
                self.session_run(
                    {signature.inputs[CLASSIFY_INPUTS].name: np.array(examples, dtype=object)},
                    [signature.outputs[a].name for a in fetch],
                ),
            )
        )
        classes, scores = values.get(CLASSIFY_CLASSES), values.get(CLASSIFY_SCORES)
        n = len(examples)
        for tensor, name, dtype in ((classes, "classes", "DT_STRING"), (scores, "scores", "DT_FLOAT")):
            if tensor is None:
                continue
            if tensor.ndim != 2:  # classifier.cc:256-290
                raise invalid(
                    f"Expected Tensor shape: [batch_size num_classes] but got {shape_debug_string(tensor.shape)}"
                )
            actual = (
                "DT_STRING"
                if tensor.dtype == object
                else types_pb2.DataType.Name(tf.as_dtype(tensor.dtype).as_datatype_enum)
            )
            if actual != dtype:
                raise invalid(f"Expected {name} Tensor of {dtype}. Got: {actual}")
            if tensor.shape[0] != n:
                raise invalid(f"Expected {name} output batch size of {n}. Got: {tensor.shape[0]}")
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise invalid(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
            )  # classifier.cc:294-300
        width = (classes if classes is not None else scores).shape[1]
        for i in range(n):
            row = response.result.classifications.add()
            for c in range(width):
                cls = row.classes.add()
                if classes is not None:
                    label = classes[i, c]
                    cls.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
                if scores is not None:
                    cls.score = scores[i, c]
        return response

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        signature = self._example_signature(request.model_spec.signature_name, REGRESS_METHOD)
        response = regression_pb2.RegressionResponse()
        self.fill_model_spec(response.model_spec, request.model_spec.signature_name)  # regressor.cc:283-285
        examples = serialized_examples(request.input)
        (values,) = self.session_run(
            {signature.inputs[REGRESS_INPUTS].name: np.array(examples, dtype=object)},
            [signature.outputs[REGRESS_OUTPUTS].name],
        )
        n = len(examples)
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):  # regressor.cc:238-259
            raise invalid(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                f"{shape_debug_string(values.shape)}"
            )
        if values.shape[0] != n:
            raise invalid(f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}")
        if values.dtype != np.float32:
            raise invalid(
                "Expected output Tensor of DT_FLOAT.  Got: "
                + types_pb2.DataType.Name(tf.as_dtype(values.dtype).as_datatype_enum)
            )
        for v in values.ravel():
            response.result.regressions.add(value=v)
        return response

    # -- Metadata (get_model_metadata_impl.cc) ----------------------------------------------------
    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in self.signature_defs.items():
            out.signature_def[name].CopyFrom(signature)
        return out

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        validate_metadata_request(request)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self.fill_model_spec(response.model_spec, None)
        response.metadata["signature_def"].Pack(self.signature_def_map())
        return response

    def fill_model_spec(self, spec, signature_name: str | None) -> None:
        """MakeModelSpec (util.cc:261-275): an empty signature name reads serving_default."""
        spec.Clear()
        spec.name = self.name
        if signature_name is not None:
            spec.signature_name = signature_name or DEFAULT_SIGNATURE
        spec.version.value = self.version

    # -- Warm-up ----------------------------------------------------------------------------------
    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests before the version becomes
        AVAILABLE (servables/tensorflow/saved_model_warmup_util.cc:100-133): a failing
        request, an unparsable record or more than 1,000 records fail the load."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path):
            try:
                log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            except Exception:
                raise invalid(f"Failed to parse warmup record: {record.numpy()[:80]!r} from {path}") from None
            kind = log.WhichOneof("log_type")
            if kind == "predict_log":
                self.predict(log.predict_log.request)
            elif kind == "classify_log":
                self.classify(log.classify_log.request)
            elif kind == "regress_log":
                self.regress(log.regress_log.request)
            else:
                raise ServingError("UNIMPLEMENTED", f"unsupported warm-up log type {kind}")
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise invalid(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
        LOG.info("%s version %d: replayed %d warm-up requests", self.name, self.version, count)
        return count


def validate_metadata_request(request: get_model_metadata_pb2.GetModelMetadataRequest) -> None:
    """ValidateGetModelMetadataRequest (get_model_metadata_impl.cc:33-47), checked before
    the model is looked up."""
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != "signature_def":
            raise invalid(f"Metadata field {field} is not supported")


def _as_proto_field(proto, value: np.ndarray) -> None:
    """Tensor::AsProtoField: values in the typed repeated field, never tensor_content."""
    if not proto.tensor_content:
        return
    proto.tensor_content = b""
    flat = value.ravel()
    field = {
        types_pb2.DT_FLOAT: "float_val",
        types_pb2.DT_DOUBLE: "double_val",
        types_pb2.DT_INT64: "int64_val",
        types_pb2.DT_INT32: "int_val",
        types_pb2.DT_INT16: "int_val",
        types_pb2.DT_INT8: "int_val",
        types_pb2.DT_UINT8: "int_val",
        types_pb2.DT_BOOL: "bool_val",
        types_pb2.DT_UINT32: "uint32_val",
        types_pb2.DT_UINT64: "uint64_val",
        types_pb2.DT_HALF: "half_val",
    }.get(proto.dtype)
    if field == "half_val":
        getattr(proto, field).extend(flat.view(np.uint16).tolist())
    elif field:
        getattr(proto, field).extend(flat.tolist())
    else:
        proto.CopyFrom(tf.make_tensor_proto(value))


def check_example_signature(signature: meta_graph_pb2.SignatureDef, method: str) -> None:
    """PreProcessClassification (classifier.cc:176-222) / PreProcessRegression
    (regressor.cc:170-206): one input named "inputs"; "classes" and/or "scores", resp.
    exactly one output "outputs". The input's dtype is not checked there (the session
    refuses a non-string input when run)."""
    debug = text_format.MessageToString(signature)
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if method == CLASSIFY_METHOD:
        if len(signature.outputs) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
        if CLASSIFY_INPUTS not in signature.inputs:
            raise invalid(f"No classification inputs found in SignatureDef: {debug}")
        if CLASSIFY_CLASSES not in signature.outputs and CLASSIFY_SCORES not in signature.outputs:
            raise invalid(
                f'Expected classification signature outputs to contain at least one of "classes" or '
                f'"scores". Signature was: {debug}'
            )
    else:
        if len(signature.outputs) != 1:
            raise invalid("Expected one output Tensor.")
        if REGRESS_INPUTS not in signature.inputs:
            raise invalid(f"No regression inputs found in SignatureDef: {debug}")
        if REGRESS_OUTPUTS not in signature.outputs:
            raise invalid(f"No regression outputs found in SignatureDef: {debug}")
