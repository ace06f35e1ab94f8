"""TF Serving's REST request and response bodies: tensorflow_serving/util/json_tensor.cc.

Predict bodies become arrays of the signature's dtypes (row "instances" or columnar
"inputs"), classify/regress bodies become the same `Input` proto the gRPC API takes, and
answers are written back in TF Serving's layout. Each rule cites the line of
json_tensor.cc (tensorflow/serving at 9d981c5c) it follows; the texts of its errors are
TF Serving's.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import input_pb2

from serving import tf_json
from serving.model import ServingError, dtype_string, invalid
from serving.tf_json import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    JsonObject,
    Raw,
    debug_string,
    is_double,
    is_int,
    type_string,
    write_decimal,
)

ROW, COLUMNAR = "row", "columnar"
_INT32 = (-(2**31), 2**31 - 1)


# -- parsing the body -----------------------------------------------------------------------------
def parse_body(body: bytes) -> JsonObject:
    """ParseJson (json_tensor.cc:473-502)."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = tf_json.parse(body)
    except tf_json.JsonParseError as e:
        raise invalid(f"JSON Parse error: {e.message} at offset: {e.offset}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def signature_name(doc: JsonObject) -> str:
    """FillSignature (json_tensor.cc:504-517)."""
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def _is_b64(value) -> bool:
    """IsValBase64Object (json_tensor.cc:358-372): exactly one member "b64", a string."""
    return isinstance(value, dict) and len(value.pairs) == 1 and "b64" in value and isinstance(value["b64"], str)


def _decode_b64(value) -> bytes:
    """JsonDecodeBase64Object (json_tensor.cc:377-389)."""
    if not _is_b64(value):
        raise invalid(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    decoded = tf_json.b64decode(value["b64"])
    if decoded is None:
        raise invalid("Unable to base64 decode")
    return decoded


# -- Predict: JSON -> arrays ------------------------------------------------------------------------
def _type_error(value, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {debug_string(value)} Type: {type_string(value)} is not of expected type: {dtype_string(dtype)}"
    )


def _scalar(value, dtype: int):
    """AddValueToTensor (json_tensor.cc:290-342): rapidjson's Is*() decides."""
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not number:
            raise _type_error(value, dtype)
        return float(value)
    if dtype in (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):
        if not is_int(value, *_INT32) or is_double(value):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogateescape")
    if dtype == types_pb2.DT_INT64:
        if not is_int(value, INT64_MIN, INT64_MAX) or is_double(value):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_UINT32:
        if not is_int(value, 0, 2**32 - 1) or is_double(value):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_UINT64:
        if not is_int(value, 0, UINT64_MAX) or is_double(value):
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        "UNIMPLEMENTED", f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}"
    )


def _dense_shape(value) -> list[int]:
    """GetDenseTensorShape (json_tensor.cc:349-356): sizes along the first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, dtype: int, shape: list[int], out: list) -> None:
    """FillTensorProto (json_tensor.cc:392-436)."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            out.append(_decode_b64(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for v in value:
        _fill(v, level + 1, dtype, shape, out)


def _array(values: list, shape: list[int], dtype: int) -> np.ndarray:
    """The tensor TF Serving builds from the typed values (Tensor::FromProto)."""
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    np_dtype = tf.as_dtype(dtype).as_numpy_dtype
    if dtype in (types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):  # int_val, cast as in C++
        return np.array(values, dtype=np.int64).astype(np_dtype).reshape(shape)
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np_dtype).reshape(shape)


def _item(value, dtype: int) -> tuple[list, list[int]]:
    shape = _dense_shape(value)
    values: list = []
    _fill(value, 0, dtype, shape, values)
    return values, shape


def predict_inputs(doc: JsonObject, input_dtypes: dict[str, int], sig_name: str) -> tuple[dict[str, np.ndarray], str]:
    """FillPredictRequestFromJson (json_tensor.cc:653-705): ({alias: array}, ROW or COLUMNAR)."""
    if not input_dtypes:
        raise invalid(f"Failed to get input map for signature: {sig_name or 'DEFAULT'}")
    names = sorted(input_dtypes)
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of 'inputs' or "
            f"'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        return _from_instances(instances, input_dtypes, names), ROW
    if has_inputs:
        return _from_inputs(doc["inputs"], input_dtypes, names), COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, dtypes: dict[str, int], names: list[str]) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList (json_tensor.cc:519-607)."""
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors required "
            "as per tensorinfo_map"
        )

    def is_element_object(v):
        return isinstance(v, dict) and not _is_b64(v)

    objects = is_element_object(instances[0])
    values: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add(item, name):  # AddInstanceItem (json_tensor.cc:443-471)
        if name not in dtypes:
            raise invalid(f"JSON object: does not have named input: {name}")
        flat, shape = _item(item, dtypes[name])
        if name not in sizes:
            sizes[name], shapes[name] = len(flat), shape
        elif sizes[name] != len(flat):
            raise invalid(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise invalid(f"Expecting shape {tf_shape(shapes[name])} but got: {tf_shape(shape)}")
        values.setdefault(name, []).extend(flat)

    for index, element in enumerate(instances):
        if objects:
            if not is_element_object(element):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            keys = set()
            for name, item in element.pairs:
                keys.add(name)
                try:
                    add(item, name)
                except ServingError as e:
                    raise invalid(
                        f"Failed to process element: {index} key: {name} of 'instances' list. Error: {e}"
                    ) from None
            if keys != set(names):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(element)} keys must be equal to: {','.join(names)}"
                )
        else:
            if is_element_object(element):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                add(element, names[0])
            except ServingError as e:
                raise invalid(f"Failed to process element: {index} of 'instances' list. Error: {e}") from None
    return {name: _array(values[name], [len(instances)] + shapes[name], dtypes[name]) for name in values}


def _from_inputs(value, dtypes: dict[str, int], names: list[str]) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap (json_tensor.cc:609-649)."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(dtypes) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required "
                "as per tensorinfo_map"
            )
        flat, shape = _item(value, dtypes[names[0]])
        return {names[0]: _array(flat, shape, dtypes[names[0]])}
    out = {}
    for name in names:
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        flat, shape = _item(value[name], dtypes[name])
        out[name] = _array(flat, shape, dtypes[name])
    return out


def tf_shape(shape) -> str:
    """ShapeToString (json_tensor.cc:239-250)."""
    return "[" + ",".join(str(d) for d in shape) + "]"


# -- Classify / Regress: JSON -> Input --------------------------------------------------------------
def _add_to_feature(value, name: str, feature: tf.train.Feature) -> None:
    """AddValueToFeature (json_tensor.cc:737-794)."""
    kind = feature.WhichOneof("kind")

    def need(wanted: str):  # IsFeatureOfKind / IncompatibleFeatureKindError (json_tensor.cc:709-733)
        if kind not in (None, wanted):
            shown = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}[kind]
            raise invalid(f"Unexpected element type in feature: {name} expecting type: {shown}")

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {type_string(value)}")
    if isinstance(value, bool):
        need("int64_list")
        feature.int64_list.value.append(1 if value else 0)
    elif isinstance(value, dict):
        need("bytes_list")
        feature.bytes_list.value.append(_decode_b64(value))
    elif isinstance(value, str):
        need("bytes_list")
        feature.bytes_list.value.append(value.encode("utf-8", "surrogateescape"))
    elif is_double(value):
        need("float_list")
        with np.errstate(over="ignore"):  # rapidjson's GetFloat: a double beyond float32 becomes +-inf
            feature.float_list.value.append(float(np.float32(value)))
    else:
        need("int64_list")
        if value > INT64_MAX:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)


def _example(value, example: tf.train.Example) -> None:
    """MakeExampleFromJsonObject (json_tensor.cc:796-816): the last of a repeated name wins."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {type_string(value)}")
    for name, content in value.pairs:
        feature = tf.train.Feature()
        for v in content if isinstance(content, list) else [content]:
            _add_to_feature(v, name, feature)
        example.features.feature[name].CopyFrom(feature)


def example_input(doc: JsonObject) -> input_pb2.Input:
    """FillClassifyRegressRequestFromJson (json_tensor.cc:818-860), for classify and regress
    alike (its "When method is classify" text included)."""
    model_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], model_input.example_list_with_context.context)
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    target = model_input.example_list_with_context.examples if has_context else model_input.example_list.examples
    for value in examples:
        _example(value, target.add())
    return model_input


# -- answers --------------------------------------------------------------------------------------
def _write_value(writer: tf_json.PrettyWriter, value, dtype: int, as_bytes: bool) -> None:
    """AddSingleValueAndAdvance (json_tensor.cc:888-950)."""
    if dtype == types_pb2.DT_FLOAT:
        writer.scalar(write_decimal(value).encode())
    elif dtype == types_pb2.DT_DOUBLE:
        writer.scalar(write_decimal(value, double=True).encode())
    elif dtype == types_pb2.DT_STRING:
        if as_bytes:  # a "..._bytes" output: {"b64": ...}
            writer.start(False)
            writer.key("b64")
            writer.scalar(tf_json.json_string(tf_json.b64encode(value)))
            writer.end()
        else:
            writer.scalar(tf_json.json_string(value))
    elif dtype == types_pb2.DT_BOOL:
        writer.scalar(b"true" if value else b"false")
    elif dtype in (
        types_pb2.DT_INT32,
        types_pb2.DT_INT16,
        types_pb2.DT_INT8,
        types_pb2.DT_UINT8,
        types_pb2.DT_INT64,
        types_pb2.DT_UINT32,
        types_pb2.DT_UINT64,
    ):
        writer.scalar(str(int(value)).encode())
    else:
        raise invalid(f"Failed to write JSON value for tensor type: {dtype_string(dtype)}")


def _write_tensor(writer, array: np.ndarray, dtype: int, as_bytes: bool) -> None:
    """AddTensorValues (json_tensor.cc:952-973): nested arrays, a scalar bare."""
    if array.ndim == 0:
        _write_value(writer, array.item(), dtype, as_bytes)
        return
    writer.start(True)
    if array.ndim == 1:
        for v in array.tolist():
            _write_value(writer, v, dtype, as_bytes)
    else:
        for sub in array:
            _write_tensor(writer, sub, dtype, as_bytes)
    writer.end()


def _dtype_of(array: np.ndarray) -> int:
    return types_pb2.DT_STRING if array.dtype == object else tf.as_dtype(array.dtype).as_datatype_enum


def predict_response(outputs: dict[str, np.ndarray], fmt: str) -> bytes:
    """MakeJsonFromTensors (json_tensor.cc:975-1066)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    writer = tf_json.PrettyWriter()
    multi = len(outputs) > 1
    writer.start(False)
    if fmt == ROW:
        batch = -1
        for name in names:
            array = outputs[name]
            if array.ndim == 0:
                raise invalid(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and array.shape[0] != batch:
                raise invalid(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}")
            batch = array.shape[0]
        writer.key("predictions")
        writer.start(True)
        for i in range(batch):
            if multi:
                writer.start(False)
            writer.single_line = True
            for name in names:
                if multi:
                    writer.key(name)
                array = outputs[name]
                dtype = _dtype_of(array)
                _write_tensor(
                    writer,
                    array[i] if array.ndim > 1 else np.asarray(array[i], dtype=array.dtype),
                    dtype,
                    dtype == types_pb2.DT_STRING and name.endswith("_bytes"),
                )
            writer.single_line = False
            if multi:
                writer.end()
        writer.end()
    else:
        writer.key("outputs")
        if multi:
            writer.start(False)
        for name in names:
            if multi:
                writer.key(name)
            dtype = _dtype_of(outputs[name])
            _write_tensor(writer, outputs[name], dtype, dtype == types_pb2.DT_STRING and name.endswith("_bytes"))
        if multi:
            writer.end()
    writer.end()
    return bytes(writer.out)


def classification_response(result) -> bytes:
    """MakeJsonFromClassificationResult (json_tensor.cc:1068-1102)."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    writer = tf_json.PrettyWriter()
    writer.start(False)
    writer.key("results")
    writer.start(True)
    for classifications in result.classifications:
        writer.single_line = True
        writer.start(True)
        for c in classifications.classes:
            writer.start(True)
            writer.write(c.label)
            writer.write(Raw(write_decimal(c.score)))
            writer.end()
        writer.end()
        writer.single_line = False
    writer.end()
    writer.end()
    return bytes(writer.out)


def regression_response(result) -> bytes:
    """MakeJsonFromRegressionResult (json_tensor.cc:1104-1127)."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    writer = tf_json.PrettyWriter()
    writer.start(False)
    writer.key("results")
    writer.single_line = True
    writer.start(True)
    for r in result.regressions:
        writer.write(Raw(write_decimal(r.value)))
    writer.end()
    writer.end()
    return bytes(writer.out)
