"""TF Serving's REST API (port 8501 in the `tensorflow/serving` image) over `http.server`.

    GET  /v1/models/NAME[/versions/V]              model status
    GET  /v1/models/NAME[/versions/V]/metadata     signature defs
    POST /v1/models/NAME[/versions/V]:predict      {"instances": [...]} or {"inputs": ...}
    POST /v1/models/NAME[/versions/V]:classify     {"examples": [{feature: value}], "context": {...}}
    POST /v1/models/NAME[/versions/V]:regress      same as classify

with TF Serving's JSON conventions: binary values as {"b64": "..."}; in classify/regress
examples a JSON integer is an int64 feature, a number with a fraction or exponent a float
feature, a string a bytes feature; errors are {"error": "..."} with 400 (bad request) or
404 (no such model/version/path). The request semantics are `serving.model`'s.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from serving.model import LoadedModel, ServingError
from serving.repository import ModelRepository

LOG = logging.getLogger(__name__)
_GET = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata)?/?$")
_POST = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:(predict|classify|regress)$")
_HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404, "UNIMPLEMENTED": 501}


def _bad(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


# -- JSON -> tensors ------------------------------------------------------------------------------
def _decode(value, dtype: tf.DType):
    """JSON value (nested lists) -> Python values of the input's dtype; {"b64"} is bytes."""
    if isinstance(value, list):
        return [_decode(v, dtype) for v in value]
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            if dtype != tf.string:
                raise _bad(f"'b64' is only valid for string (DT_STRING) inputs, not {dtype.name}")
            return base64.b64decode(value["b64"], validate=True)
        raise _bad(f"unexpected JSON object {value!r}: only {{\"b64\": ...}} objects are values")
    if dtype == tf.string:
        if not isinstance(value, str):
            raise _bad(f"expected a string for a DT_STRING input, got {value!r}")
        return value.encode()
    if isinstance(value, str):
        raise _bad(f"expected a number for a {dtype.name} input, got {value!r}")
    return value


def _array(value, dtype: tf.DType) -> np.ndarray:
    decoded = _decode(value, dtype)
    try:
        return np.array(decoded, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    except (TypeError, ValueError) as e:
        raise _bad(f"cannot convert {str(value)[:80]} to {dtype.name}: {e}") from None


def _is_named(obj, names) -> bool:
    return isinstance(obj, dict) and set(obj) != {"b64"} and set(obj) <= set(names)


def predict_inputs(body: dict, model: LoadedModel) -> tuple[dict[str, np.ndarray], bool]:
    """Request body -> ({input: batch array}, row format?) by TF Serving's rules."""
    signature = model.signature(body.get("signature_name", ""))
    dtypes = {k: tf.as_dtype(v.dtype) for k, v in signature.inputs.items()}
    if ("instances" in body) == ("inputs" in body):
        raise _bad("JSON object: does not have named input 'instances' or 'inputs' (exactly one is required)")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise _bad("'instances' must be a non-empty list")
        if all(_is_named(i, dtypes) for i in instances):
            columns = {k: [i.get(k) for i in instances] for k in dtypes}
            if any(v is None for col in columns.values() for v in col):
                raise _bad(f"every instance must name all inputs {sorted(dtypes)}")
        elif len(dtypes) == 1:
            columns = {next(iter(dtypes)): instances}
        else:
            raise _bad(f"instances must be objects naming the inputs {sorted(dtypes)}")
        return {k: _array(v, dtypes[k]) for k, v in columns.items()}, True
    inputs = body["inputs"]
    if isinstance(inputs, dict) and set(inputs) != {"b64"} and set(inputs) == set(dtypes):
        return {k: _array(v, dtypes[k]) for k, v in inputs.items()}, False
    if len(dtypes) == 1:
        return {next(iter(dtypes)): _array(inputs, next(iter(dtypes.values())))}, False
    raise _bad(f"'inputs' must be an object naming the inputs {sorted(dtypes)}")


def _feature(name: str, value) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _bad(f"feature {name}: empty list")
    if all(isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode() for v in values]))
    if any(isinstance(v, (bool, str, dict, list)) or v is None for v in values):
        raise _bad(f"feature {name}: values must all be numbers or all strings, got {value!r}")
    if all(isinstance(v, int) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def json_example(obj) -> tf.train.Example:
    """{"fare": 12.5, "trip_start_hour": 14, "company": "Flash Cab"} -> tf.train.Example."""
    if not isinstance(obj, dict):
        raise _bad(f"an example must be a JSON object of features, got {obj!r}")
    return tf.train.Example(features=tf.train.Features(feature={k: _feature(k, v) for k, v in obj.items()}))


def serialized_json_examples(body: dict) -> list[bytes]:
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise _bad("'examples' must be a non-empty list of objects")
    context = json_example(body["context"]).SerializeToString() if "context" in body else b""
    return [context + json_example(e).SerializeToString() for e in examples]


# -- tensors -> JSON ------------------------------------------------------------------------------
def _json_value(value):
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value] if value.ndim else _json_value(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def predict_json(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": _json_value(next(iter(outputs.values())))}
        return {"outputs": {k: _json_value(v) for k, v in outputs.items()}}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise _bad(f"outputs have different batch sizes {sizes}: use the columnar format ('inputs')")
    batch = next(iter(sizes.values()))
    if len(outputs) == 1:
        only = next(iter(outputs.values()))
        return {"predictions": [_json_value(only[i]) for i in range(batch)]}
    return {"predictions": [{k: _json_value(v[i]) for k, v in outputs.items()} for i in range(batch)]}


# -- the handler ----------------------------------------------------------------------------------
class RestHandler(BaseHTTPRequestHandler):
    repository: ModelRepository  # set by make_rest_server
    server_version = "taxi-serving-rest/1"

    def log_message(self, fmt, *args):  # to logging, not stderr
        LOG.info("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: dict) -> None:
        data = (json.dumps(body, indent=1) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error: ServingError) -> None:
        self._send(_HTTP_STATUS.get(error.code, 500), {"error": error.message})

    def do_GET(self):
        m = _GET.match(self.path.split("?")[0])
        if not m:
            return self._send(404, {"error": f"Malformed request: GET {self.path}"})
        name, version, metadata = m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3)
        try:
            if metadata:
                model = self.repository.get(name, version)
                return self._send(200, {
                    "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                    "metadata": {"signature_def": json_format.MessageToDict(
                        model.signature_def_map(), preserving_proto_field_name=True)}})
            rows = self.repository.status(name, version)
            return self._send(200, {"model_version_status": [
                {"version": str(r.version), "state": r.state,
                 "status": {"error_code": r.error_code, "error_message": r.error_message}} for r in rows]})
        except ServingError as e:
            return self._error(e)

    def do_POST(self):
        m = _POST.match(self.path.split("?")[0])
        if not m:
            return self._send(404, {"error": f"Malformed request: POST {self.path}"})
        name, version, verb = m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError as e:
                raise _bad(f"JSON Parse error: {e}") from None
            if not isinstance(body, dict):
                raise _bad("the request body must be a JSON object")
            model = self.repository.get(name, version)
            signature_name = body.get("signature_name", "")
            if verb == "predict":
                inputs, rows = predict_inputs(body, model)
                return self._send(200, predict_json(model.predict_arrays(signature_name, inputs), rows))
            examples = serialized_json_examples(body)
            if verb == "classify":
                return self._send(200, {"results": [[[label, score] for label, score in row]
                                                    for row in model.classify_serialized(signature_name, examples)]})
            return self._send(200, {"results": model.regress_serialized(signature_name, examples)})
        except ServingError as e:
            return self._error(e)


def start_rest_server(repository: ModelRepository, host: str, port: int) -> tuple[ThreadingHTTPServer, int]:
    """Serve in a background thread; returns the server and its port (0 picks a free one)."""
    handler = type("BoundRestHandler", (RestHandler,), {"repository": repository})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    bound = server.server_address[1]
    LOG.info("REST API on http://%s:%d/v1/models/%s", host, bound, repository.name)
    return server, bound
