"""One loaded model version, and TensorFlow Serving's request semantics on it.

The gRPC servicer, the REST handler and warm-up replay all go through `LoadedModel`, so
Predict, Classify, Regress and GetModelMetadata behave the same on both APIs, and the same
as TF Serving's C++ server does for the checks that matter to a client: which MetaGraph is
loaded (tag set exactly {"serve"}), the default signature ("serving_default"), inputs must
match the signature's names and dtypes, Classify/Regress need a signature with one string
input (serialized tf.Examples) and the outputs "classes"/"scores" resp. "outputs", and
method names are only checked when asked (TF Serving's --enable_signature_method_name_check
is off by default, because TF2 exports every signature as a predict signature).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl  # the SavedModel proto, as TF Serving reads it
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, predict_pb2,
                                     prediction_log_pb2, regression_pb2)

LOG = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAGS = frozenset({"serve"})
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


class ServingError(Exception):
    """A request TF Serving would refuse; `code` is the gRPC status name (INVALID_ARGUMENT, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _tf_error_code(error: tf.errors.OpError) -> str:
    names = {3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
             12: "UNIMPLEMENTED", 13: "INTERNAL"}
    return names.get(error.error_code, "UNKNOWN")


def serve_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef whose tag set is exactly {"serve"} (what TF Serving loads by default)."""
    saved_model = loader_impl.parse_saved_model(path)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == SERVE_TAGS:
            return meta_graph
    tags = [list(m.meta_info_def.tags) for m in saved_model.meta_graphs]
    raise ServingError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: {{ serve }}. "
                                    f"Available tags: {tags} ({path})")


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Like TF Serving's default response encoding: values in the typed repeated field
    (float_val, int64_val, string_val...), not packed into tensor_content."""
    array = np.asarray(array)
    dtype = tf.as_dtype(array.dtype if array.dtype.kind not in "OSU" else tf.string)
    proto = tensor_pb2.TensorProto(
        dtype=dtype.as_datatype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]))
    flat = array.ravel()
    if dtype == tf.string:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype == tf.float32:
        proto.float_val.extend(flat.tolist())
    elif dtype == tf.float64:
        proto.double_val.extend(flat.tolist())
    elif dtype == tf.int64:
        proto.int64_val.extend(flat.tolist())
    elif dtype in (tf.int32, tf.int16, tf.int8, tf.uint8):
        proto.int_val.extend(flat.tolist())
    elif dtype == tf.bool:
        proto.bool_val.extend(flat.tolist())
    else:
        return tf.make_tensor_proto(array)
    return proto


def serialized_examples(model_input) -> list[bytes]:
    """An `Input` proto as the serialized tf.Examples the signature receives.

    With a context, TF Serving concatenates the serialized context and each example, so
    the example's features win where both set one; this does the same.
    """
    kind = model_input.WhichOneof("kind")
    if kind == "example_list" and model_input.example_list.examples:
        return [e.SerializeToString() for e in model_input.example_list.examples]
    if kind == "example_list_with_context" and model_input.example_list_with_context.examples:
        context = model_input.example_list_with_context.context.SerializeToString()
        return [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
    raise ServingError("INVALID_ARGUMENT", "Input is empty.")


class LoadedModel:
    """A SavedModel version loaded with the serve tag; answers requests like TF Serving."""

    def __init__(self, name: str, path: str, version: int, method_name_check: bool = False):
        self.name = name
        self.path = path
        self.version = version
        self.method_name_check = method_name_check
        self.signature_defs = dict(serve_meta_graph(path).signature_def)
        self._model = tf.saved_model.load(path, tags=list(SERVE_TAGS))
        self._functions = dict(self._model.signatures)
        missing = sorted(set(self.signature_defs) - set(self._functions) - {"__saved_model_init_op"})
        if missing:
            raise ServingError("INTERNAL", f"signatures {missing} are declared but cannot be loaded")

    # -- helpers ----------------------------------------------------------------------------
    def signature(self, name: str, method: str | None = None) -> meta_graph_pb2.SignatureDef:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs or name not in self._functions:
            raise ServingError("INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def')
        signature = self.signature_defs[name]
        if method and self.method_name_check and signature.method_name != method:
            raise ServingError("INVALID_ARGUMENT", f"Expected {method.rsplit('/', 1)[-1]} signature method_name "
                                                   f"to be {method}. Was: {signature.method_name}")
        return signature

    def _run(self, name: str, inputs: dict[str, tf.Tensor]) -> dict[str, np.ndarray]:
        try:
            outputs = self._functions[name or DEFAULT_SIGNATURE](**inputs)
        except tf.errors.OpError as e:
            raise ServingError(_tf_error_code(e), e.message) from None
        except (TypeError, ValueError) as e:  # shape or dtype the signature cannot take
            raise ServingError("INVALID_ARGUMENT", str(e)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    # -- Predict ------------------------------------------------------------------------------
    def predict_arrays(self, signature_name: str, inputs: dict[str, np.ndarray],
                       output_filter: list[str] | None = None) -> dict[str, np.ndarray]:
        signature = self.signature(signature_name, PREDICT_METHOD)
        expected, sent = set(signature.inputs), set(inputs)
        if expected != sent:
            raise ServingError("INVALID_ARGUMENT", (
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}."))
        for alias in output_filter or []:
            if alias not in signature.outputs:
                raise ServingError("INVALID_ARGUMENT", f"output tensor alias not found in signature: {alias} "
                                                       f"Outputs expected to be in the set {{{','.join(sorted(signature.outputs))}}}.")
        tensors = {}
        for key, value in inputs.items():
            want = tf.as_dtype(signature.inputs[key].dtype)
            try:
                tensors[key] = tf.constant(value, dtype=want)
            except (TypeError, ValueError) as e:
                raise ServingError("INVALID_ARGUMENT", f"Expects arg {key} to be {want.name}: {e}") from None
        outputs = self._run(signature_name, tensors)
        return {k: v for k, v in outputs.items() if not output_filter or k in output_filter}

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature = self.signature(request.model_spec.signature_name, PREDICT_METHOD)
        inputs = {}
        for key, proto in request.inputs.items():
            if key in signature.inputs and proto.dtype != signature.inputs[key].dtype:
                raise ServingError("INVALID_ARGUMENT", (
                    f"Expects arg {key} to be {tf.as_dtype(signature.inputs[key].dtype).name} "
                    f"but {tf.as_dtype(proto.dtype).name} is provided"))
            inputs[key] = tf.make_ndarray(proto)
        outputs = self.predict_arrays(request.model_spec.signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        self.fill_model_spec(response.model_spec, request.model_spec.signature_name)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(to_tensor_proto(value))
        return response

    # -- Classify / Regress -----------------------------------------------------------------------
    def _example_input_key(self, signature: meta_graph_pb2.SignatureDef) -> str:
        if len(signature.inputs) != 1:
            raise ServingError("INVALID_ARGUMENT", "Expected one input Tensor.")
        key = next(iter(signature.inputs))
        if signature.inputs[key].dtype != types_pb2.DT_STRING:
            raise ServingError("INVALID_ARGUMENT", "Input tensor must be of type string (serialized tf.Examples).")
        return key

    def classify_serialized(self, signature_name: str, examples: list[bytes]) -> list[list[tuple[str, float | None]]]:
        """[[(label, score), ...] per example], like TF Serving's ClassificationResult."""
        signature = self.signature(signature_name, CLASSIFY_METHOD)
        key = self._example_input_key(signature)
        if len(signature.outputs) not in (1, 2):
            raise ServingError("INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(signature.outputs)}")
        if "classes" not in signature.outputs and "scores" not in signature.outputs:
            raise ServingError("INVALID_ARGUMENT", "Expected classification signature outputs to contain at least "
                                                   "one of classes or scores")
        outputs = self._run(signature_name, {key: tf.constant(examples, dtype=tf.string)})
        classes, scores = outputs.get("classes"), outputs.get("scores")
        batch = len(examples)
        for name, tensor in (("classes", classes), ("scores", scores)):
            if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != batch):
                raise ServingError("INVALID_ARGUMENT", f"Expected Tensor shape: [batch_size num_classes] but got "
                                                       f"{list(tensor.shape)} for {name} (batch size {batch})")
        if classes is not None and scores is not None and classes.shape != scores.shape:
            raise ServingError("INVALID_ARGUMENT", f"Tensors class and score should match in shape: "
                                                   f"{list(classes.shape)} vs {list(scores.shape)}")
        width = (classes if classes is not None else scores).shape[1]
        return [[((classes[i, j].decode() if classes is not None else ""),
                  (float(scores[i, j]) if scores is not None else None)) for j in range(width)]
                for i in range(batch)]

    def classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        results = self.classify_serialized(request.model_spec.signature_name, serialized_examples(request.input))
        response = classification_pb2.ClassificationResponse()
        self.fill_model_spec(response.model_spec, request.model_spec.signature_name)
        for row in results:
            classifications = response.result.classifications.add()
            for label, score in row:
                c = classifications.classes.add(label=label)
                if score is not None:
                    c.score = score
        return response

    def regress_serialized(self, signature_name: str, examples: list[bytes]) -> list[float]:
        signature = self.signature(signature_name, REGRESS_METHOD)
        key = self._example_input_key(signature)
        if len(signature.outputs) != 1:
            raise ServingError("INVALID_ARGUMENT", "Expected one output Tensor.")
        if "outputs" not in signature.outputs:
            raise ServingError("FAILED_PRECONDITION", "No regression outputs found in signature outputs.")
        values = self._run(signature_name, {key: tf.constant(examples, dtype=tf.string)})["outputs"]
        if not (values.shape == (len(examples),) or values.shape == (len(examples), 1)):
            raise ServingError("INVALID_ARGUMENT", f"Expected output Tensor shape to be either [batch_size] or "
                                                   f"[batch_size, 1] but got {list(values.shape)}")
        return [float(v) for v in values.ravel()]

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        values = self.regress_serialized(request.model_spec.signature_name, serialized_examples(request.input))
        response = regression_pb2.RegressionResponse()
        self.fill_model_spec(response.model_spec, request.model_spec.signature_name)
        for v in values:
            response.result.regressions.add(value=v)
        return response

    # -- Metadata ---------------------------------------------------------------------------------
    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in self.signature_defs.items():
            out.signature_def[name].CopyFrom(signature)
        return out

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.metadata_field:
            raise ServingError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self.fill_model_spec(response.model_spec, None)
        for field in request.metadata_field:
            if field != "signature_def":
                raise ServingError("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
            response.metadata["signature_def"].Pack(self.signature_def_map())
        return response

    def fill_model_spec(self, spec, signature_name: str | None) -> None:
        """Responses name the model, the version that answered and the signature used."""
        spec.name = self.name
        spec.version.value = self.version
        if signature_name is not None:
            spec.signature_name = signature_name or DEFAULT_SIGNATURE

    # -- Warm-up ----------------------------------------------------------------------------------
    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests like TF Serving does before a
        version becomes AVAILABLE: a failing request fails the load."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
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
        LOG.info("%s version %d: replayed %d warm-up requests", self.name, self.version, count)
        return count
