"""`python -m serving serve` answers as TensorFlow Serving does, over real HTTP and gRPC.

Every case names the TF Serving source it follows: tensorflow/serving at commit 9d981c5c
("TFS/" below stands for tensorflow_serving/). The texts are TF Serving's; the cases are
ours, sent to a running server that serves `serving_support.build_tiny_model`. Valid
answers are compared with the same SavedModel called in-process.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving import signatures
from tests.serving_support import MODEL, PROJECT_DIR, VERSION, build_tiny_model, request, start_server

pytestmark = pytest.mark.integration  # a model server process on loopback

PREDICT = f"/v1/models/{MODEL}:predict"
CLASSIFY = f"/v1/models/{MODEL}:classify"
REGRESS = f"/v1/models/{MODEL}:regress"
STATUS_JSON = {
    "model_version_status": [
        {"version": str(VERSION), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny_base") / MODEL
    build_tiny_model(base / str(VERSION))
    return base


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    server = start_server(model_dir, tmp_path_factory.mktemp("tiny_server"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference(model_dir):
    """The SavedModel's own signatures, called in-process."""
    return tf.saved_model.load(str(model_dir / str(VERSION))).signatures


def call(server, method: str, path: str, body=None, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return request(server.rest_port, method, path, body, headers)


def error_of(server, method, path, body=None) -> tuple[int, str]:
    status, headers, data = call(server, method, path, body)
    assert headers.get("content-type") == "application/json", (status, headers, data)
    return status, json.loads(data)["error"]


# -- routes, methods, URL forms (TFS/model_servers/http_rest_api_util.cc, http_server.cc, util/net_http) --
ROUTE_OK = [
    # GET status; a label is not looked up for status (TFS/model_servers/get_model_status_impl.cc:78-108,
    # TFS/model_servers/http_rest_api_handler_test.cc:493-512)
    "/v1/models/tiny",
    f"/v1/models/tiny/versions/{VERSION}",
    "/v1/models/tiny/labels/anything",
    # the route regexes are case-insensitive "(?i)" (TFS/model_servers/http_rest_api_util.cc:31-34) ...
    "/V1/MODELS/tiny",
    # ... but the "metadata" sub-resource is compared exactly, so this is a status request
    # (TFS/model_servers/http_rest_api_handler.cc:98-104)
    "/v1/models/tiny/METADATA",
    # the model name is percent-decoded (DecodeArg, TFS/model_servers/http_rest_api_util.cc:69-88, 109-114)
    "/v1/models/t%69ny",
]


@pytest.mark.parametrize("path", ROUTE_OK)
def test_status_routes(server, path):
    status, headers, data = call(server, "GET", path)
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(data) == STATUS_JSON  # TFS/model_servers/http_rest_api_handler_test.cc:454-472


ROUTE_ERRORS = [
    # (method, path, HTTP status, error text, cited)
    (
        "GET",
        "/v1/models",
        400,
        "Missing model name in request.",
        "TFS/model_servers/http_rest_api_handler.cc:187-189; _test.cc:193-196",
    ),
    (
        "GET",
        "/v1/models/debug/model_name",
        400,
        "Malformed request: GET /v1/models/debug/model_name",
        "TFS/model_servers/http_rest_api_handler_test.cc:197-200",
    ),
    (
        "POST",
        "/v1/models/tiny/metadata",
        400,
        "Malformed request: POST /v1/models/tiny/metadata",
        "TFS/model_servers/http_rest_api_handler_test.cc:236-239",
    ),
    (
        "GET",
        "/v1/models/tiny:predict",
        400,
        "Malformed request: GET /v1/models/tiny:predict",
        "TFS/model_servers/http_rest_api_handler_test.cc:207-210",
    ),
    (
        "POST",
        "/v1/models/tiny/versions/HELLO:regress",
        400,
        "Malformed request: POST /v1/models/tiny/versions/HELLO:regress",
        "TFS/model_servers/http_rest_api_handler_test.cc:222-226",
    ),
    (
        "POST",
        "/v1/models/tiny/versions/50/labels/x:regress",
        400,
        "Malformed request: POST /v1/models/tiny/versions/50/labels/x:regress",
        "TFS/model_servers/http_rest_api_handler_test.cc:247-251",
    ),
    # the verb matches case-insensitively but is dispatched by exact comparison
    (
        "POST",
        "/v1/models/tiny:PREDICT",
        400,
        "Malformed request: POST /v1/models/tiny:PREDICT",
        "TFS/model_servers/http_rest_api_handler.cc:85-96",
    ),
    # only the model name and label are decoded: an encoded ":" is not the verb separator
    (
        "POST",
        "/v1/models/tiny%3Apredict",
        400,
        "Malformed request: POST /v1/models/tiny%3Apredict",
        "TFS/model_servers/http_rest_api_util.cc:31-32, 100-103",
    ),
    # other methods reach the handler and are malformed there (TFS/util/net_http/server/internal/
    # evhttp_server.cc:114-117 lets them through)
    (
        "PUT",
        "/v1/models/tiny",
        400,
        "Malformed request: PUT /v1/models/tiny",
        "TFS/model_servers/http_rest_api_handler.cc:74-75, 85-105",
    ),
    (
        "DELETE",
        "/v1/models/tiny",
        400,
        "Malformed request: DELETE /v1/models/tiny",
        "TFS/model_servers/http_rest_api_handler.cc:74-75, 85-105",
    ),
    (
        "PATCH",
        PREDICT,
        400,
        f"Malformed request: PATCH {PREDICT}",
        "TFS/model_servers/http_rest_api_handler.cc:74-75, 85-105",
    ),
    # unknown model / version (TFS/model_servers/get_model_status_impl.cc:83-99)
    (
        "GET",
        "/v1/models/other",
        404,
        "Could not find any versions of model other",
        "TFS/model_servers/get_model_status_impl.cc:95-99",
    ),
    (
        "GET",
        "/v1/models/tiny/versions/3",
        404,
        "Could not find version 3 of model tiny",
        "TFS/model_servers/get_model_status_impl.cc:83-88",
    ),
    # the query string is part of the matched path (TFS/util/net_http/server/internal/evhttp_request.cc:105-110)
    (
        "GET",
        "/v1/models/tiny?verbose=1",
        404,
        "Could not find any versions of model tiny?verbose=1",
        "TFS/util/net_http/server/internal/evhttp_request.cc:105-110; http_rest_api_util.cc:33-34",
    ),
    (
        "GET",
        "/v1/models/other/metadata",
        404,
        "Servable not found for request: Latest(other)",
        "TFS/core/basic_manager.cc:139; TFS/core/manager.h:150-161",
    ),
    (
        "GET",
        "/v1/models/tiny/versions/3/metadata",
        404,
        "Servable not found for request: Specific(tiny, 3)",
        "TFS/core/basic_manager.cc:139; TFS/core/manager.h:150-161",
    ),
    (
        "GET",
        "/v1/models/tiny/labels/stable/metadata",
        400,
        "Unrecognized servable version label: stable",
        "TFS/model_servers/server_core.cc:873-892",
    ),
]


@pytest.mark.parametrize("method, path, code, text, cited", ROUTE_ERRORS, ids=[f"{c[0]} {c[1]}" for c in ROUTE_ERRORS])
def test_route_errors(server, method, path, code, text, cited):
    assert error_of(server, method, path, b"" if method != "GET" else None) == (code, text), cited


def test_version_beyond_int64_is_400_without_a_body(server):
    # ParseModelInfo fails (TFS/model_servers/http_rest_api_util.cc:115-120) and ProcessRequest returns
    # before MakeJsonFromStatus (TFS/model_servers/http_rest_api_handler.cc:80-82, 107)
    status, headers, data = call(server, "POST", "/v1/models/tiny/versions/99999999999999999999:predict", "{}")
    assert (status, data, headers["content-type"]) == (400, b"", "application/json")


def test_paths_outside_v1_and_methods_libevent_refuses(server):
    # the dispatcher takes only "(?i)/v1/.*" (TFS/model_servers/http_rest_api_util.h:33, http_server.cc:344-353);
    # anything else is libevent's own 404 page (TFS/util/net_http/server/internal/evhttp_server.cc:174-177)
    status, headers, data = call(server, "GET", "/v2/models/tiny")
    assert status == 404 and headers["content-type"].startswith("text/html") and b"<H1>Not Found</H1>" in data
    # TRACE is not among the methods libevent is told to allow (evhttp_server.cc:114-117): 501
    status, _, data = call(server, "TRACE", "/v1/models/tiny")
    assert status == 501 and b"Not Implemented" in data
    # HEAD reaches the handler (malformed, 400) and libevent sends no body
    status, _, data = call(server, "HEAD", "/v1/models/tiny")
    assert (status, data) == (400, b"")


def test_cors_preflight(server):
    # OPTIONS is answered without the handler: OK with an http(s) Origin, FAILED_PRECONDITION (400) without,
    # and no body either way (TFS/model_servers/http_server.cc:374-381, 391-397)
    status, headers, data = call(server, "OPTIONS", PREDICT, headers={"Origin": "https://example.com"})
    assert (status, data) == (200, b"")
    assert "access-control-allow-origin" not in headers  # only with --enable_cors_support (http_server.cc:387-389)
    status, _, data = call(server, "OPTIONS", PREDICT)
    assert (status, data) == (400, b"")


def test_cors_headers_with_enable_cors_support(model_dir):
    # --enable_cors_support adds three headers to every answer, preflight included
    # (TFS/model_servers/http_rest_api_util.cc:40-44, http_server.cc:387-389)
    from serving.repository import ModelRepository
    from serving.rest import start_rest_server

    repository = ModelRepository(MODEL, str(model_dir))
    repository.load_first()
    http_server, port = start_rest_server(repository, "127.0.0.1", 0, enable_cors_support=True)
    try:
        for method, headers in (("OPTIONS", {"Origin": "http://localhost:3000"}), ("GET", {})):
            status, answer_headers, _ = request(port, method, f"/v1/models/{MODEL}", None, headers)
            assert status == 200
            assert (
                answer_headers["access-control-allow-origin"],
                answer_headers["access-control-allow-methods"],
                answer_headers["access-control-allow-headers"],
            ) == ("*", "POST, GET", "Content-Type")
    finally:
        http_server.shutdown()


def test_gzip_request_body_is_inflated(server, reference):
    # auto_uncompress_input defaults to true (TFS/util/net_http/server/public/httpserver_interface.h:108-123,
    # TFS/util/net_http/server/internal/evhttp_request.cc:259-267)
    body = gzip.compress(json.dumps({"signature_name": "identity", "instances": [1.5, 2.5]}).encode())
    status, _, data = call(server, "POST", PREDICT, body, {"Content-Encoding": "gzip"})
    assert (status, json.loads(data)) == (200, {"predictions": [1.5, 2.5]})


# -- JSON parsing (TFS/util/json_tensor.cc:473-517) ------------------------------------------------------
PARSE_ERRORS = [
    (
        "",
        "JSON Parse error: The document is empty",
        "TFS/util/json_tensor.cc:474-476; TFS/model_servers/http_rest_api_handler_test.cc:290-295",
    ),
    (
        "instances = [1, 2]",
        "JSON Parse error: Invalid value. at offset: 0",
        "TFS/model_servers/http_rest_api_handler_test.cc:298-301; json_tensor.cc:486-490",
    ),
    ("   ", "JSON Parse error: The document is empty. at offset: 3", "TFS/util/json_tensor.cc:486-490"),
    ('{"instances": [1,}', "JSON Parse error: Invalid value. at offset: 17", "TFS/util/json_tensor.cc:486-490"),
    (
        '{"a" 1}',
        "JSON Parse error: Missing a colon after a name of object member. at offset: 5",
        "TFS/util/json_tensor.cc:486-490",
    ),
    (
        '{"a": [1 2]}',
        "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9",
        "TFS/util/json_tensor.cc:486-490",
    ),
    (
        '{"a": "x\\q"}',
        "JSON Parse error: Invalid escape character in string. at offset: 8",
        "TFS/util/json_tensor.cc:486-490",
    ),
    (
        '{"a": "\\udc00"}',
        "JSON Parse error: The surrogate pair in string is invalid. at offset: 7",
        "TFS/util/json_tensor.cc:486-490",
    ),
    (
        '{"a": 1e999}',
        "JSON Parse error: Number too big to be stored in double. at offset: 6",
        "TFS/util/json_tensor.cc:486-490",
    ),
    ('{"a": 1.}', "JSON Parse error: Miss fraction part in number. at offset: 8", "TFS/util/json_tensor.cc:486-490"),
    (
        '{"a": "open',
        "JSON Parse error: Missing a closing quotation mark in string. at offset: 11",
        "TFS/util/json_tensor.cc:486-490",
    ),
    ("[1, 2]", "JSON Value: [1, 2] Is not object", "TFS/util/json_tensor.cc:498-500"),
    (
        '{"signature_name": 100}',
        "JSON Value: {\n    \"signature_name\": 100\n} not formatted correctly. 'signature_name' key must be a string "
        "value.",
        "TFS/util/json_tensor.cc:280-284, 509-512; http_rest_api_handler_test.cc:322-327",
    ),
]


@pytest.mark.parametrize("body, text, cited", PARSE_ERRORS, ids=[c[0][:24] or "empty" for c in PARSE_ERRORS])
@pytest.mark.parametrize("path", [PREDICT, CLASSIFY])
def test_parse_errors(server, path, body, text, cited):
    assert error_of(server, "POST", path, body) == (400, text), cited


def test_nan_infinity_and_trailing_text_are_accepted(server):
    # kParseNanAndInfFlag and kParseStopWhenDoneFlag (TFS/util/json_tensor.cc:483-485); NaN/Infinity are
    # written back as such (WriteDecimal, json_tensor.cc:163-167)
    body = b'{"signature_name": "identity", "instances": [NaN, -Infinity, Inf, 2]} and then some text'
    status, _, data = call(server, "POST", PREDICT, body)
    assert status == 200, data
    assert b"NaN" in data and b"-Infinity" in data
    values = json.loads(data)["predictions"]
    assert np.isnan(values[0]) and values[1:] == [-np.inf, np.inf, 2.0]


# -- Predict (TFS/util/json_tensor.cc:519-705, model_servers/http_rest_api_handler.cc:152-178) ------------
def test_row_and_columnar_predict_equal_the_saved_model(server, reference):
    rows = {"instances": [{"x": [1, 2], "s": "ab"}, {"x": [3, 4.5], "s": {"b64": "AAEC"}}]}
    status, _, data = call(server, "POST", PREDICT, rows)
    assert status == 200, data
    expected = reference["serving_default"](
        x=tf.constant([[1, 2], [3, 4.5]], tf.float32), s=tf.constant([b"ab", b"\x00\x01\x02"])
    )
    assert json.loads(data) == {
        "predictions": [  # row format (json_tensor.cc:975-1026)
            {"sum": float(expected["sum"][i]), "length": int(expected["length"][i])} for i in range(2)
        ]
    }
    status, _, data = call(server, "POST", PREDICT, {"inputs": {"x": [[1, 2], [3, 4.5]], "s": ["ab", {"b64": "AAEC"}]}})
    assert status == 200, data
    assert json.loads(data) == {
        "outputs": {  # columnar format (json_tensor.cc:1028-1048)
            "sum": expected["sum"].numpy().tolist(),
            "length": expected["length"].numpy().tolist(),
        }
    }
    # a single input takes a plain list (json_tensor.cc:574-588) or a plain value/list (617-629)
    for body in ({"signature_name": "single", "instances": [[1, 2]]}, {"signature_name": "single", "inputs": [[1, 2]]}):
        status, _, data = call(server, "POST", PREDICT, body)
        key = "predictions" if "instances" in body else "outputs"
        assert (status, json.loads(data)) == (200, {key: [[2.0, 4.0]]})


def test_answer_layout_and_float_formatting(server):
    # rapidjson's PrettyWriter with kFormatSingleLineArray switched on per row (json_tensor.cc:1001-1024), and
    # WriteDecimal's six digits, ".0" for whole numbers (json_tensor.cc:124-170; json_tensor_test.cc:924-949)
    body = {"signature_name": "identity", "instances": [9000000, 999999, 0.5, 0.0003, 0.00003, 555557.5, 0.1]}
    status, _, data = call(server, "POST", PREDICT, body)
    assert status == 200
    assert data == (b'{\n    "predictions": [9e+06, 999999.0, 0.5, 0.0003, 3e-05, 555557.5, 0.1\n    ]\n}')
    # an integer beyond float32's precision loses it, as in json_tensor_test.cc:183-221
    status, _, data = call(server, "POST", PREDICT, {"signature_name": "identity", "instances": [1435774380]})
    assert b"[1.43577434e+09" in data  # six digits do not round-trip: max_digits10 (json_tensor.cc:141-149)
    assert np.float32(json.loads(data)["predictions"][0]) == np.float32(1435774380)


def test_bytes_outputs_are_base64(server):
    # an output whose name ends in "_bytes" is written as {"b64": ...} (json_tensor.cc:877-885, 907-920)
    status, _, data = call(server, "POST", PREDICT, {"signature_name": "bytes_out", "instances": [{"b64": "AAE="}]})
    assert status == 200
    assert json.loads(data) == {"predictions": [{"echo_bytes": {"b64": "AAE="}, "echo": "\x00\x01"}]}


PREDICT_ERRORS = [
    (
        {"instances": [1], "inputs": [1]},
        'JSON Value: {\n    "instances": [1],\n    "inputs": [1]\n} Not formatted correctly expecting only one of '
        "'inputs' or 'instances' keys to exist ",
        "TFS/util/json_tensor.cc:677-682",
    ),
    ({"signature_name": "single"}, "Missing 'inputs' or 'instances' key", "TFS/util/json_tensor.cc:704"),
    (
        {"instances": []},
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        "TFS/util/json_tensor.cc:687-690",
    ),
    (
        {"instances": 5},
        "JSON Value: {\n    \"instances\": 5\n} Expecting 'instances' to be an list/array",
        "TFS/util/json_tensor.cc:683-686",
    ),
    (
        {"instances": [[1, 2]]},
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map",
        "TFS/util/json_tensor.cc:526-530",
    ),
    (
        {"inputs": [[1, 2]]},
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map",
        "TFS/util/json_tensor.cc:617-622",
    ),
    (
        {"instances": [{"x": [1, 2]}]},
        "Failed to process element: 0 of 'instances' list. JSON object: {\n    "
        '"x": [1, 2]\n} keys must be equal to: s,x',
        "TFS/util/json_tensor.cc:568-573",
    ),
    (
        {"instances": [{"x": [1, 2], "s": "a", "z": 1}]},
        "Failed to process element: 0 key: z of 'instances' list. "
        "Error: INVALID_ARGUMENT: JSON object: does not have named input: z",
        "TFS/util/json_tensor.cc:448-451, 560-566",
    ),
    (
        {"instances": [{"x": ["a", 2], "s": "q"}]},
        "Failed to process element: 0 key: x of 'instances' list. Error: "
        'INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected type: float',
        "TFS/util/json_tensor.cc:262-267, 294; http_rest_api_handler_test.cc:303-308",
    ),
    (
        {"instances": [{"x": [1, 2], "s": "a"}, [1, 2]]},
        "Expecting object but got list at item 1 of input list",
        "TFS/util/json_tensor.cc:551-555",
    ),
    (
        {"signature_name": "single", "instances": [[1, 2], {"x": [1, 2]}]},
        "Expecting value/list but got object at item 1 of input list",
        "TFS/util/json_tensor.cc:575-579",
    ),
    (
        {"signature_name": "single", "instances": [[1, 2], [3, 4, 5]]},
        "Failed to process element: 1 of 'instances' "
        "list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 3",
        "TFS/util/json_tensor.cc:462-464",
    ),
    (
        {"signature_name": "single", "instances": [[1, 2], [[3], [4]]]},
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [2,1]",
        "TFS/util/json_tensor.cc:465-469",
    ),
    (
        {"signature_name": "single", "inputs": [[1, 2], [3]]},
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        "TFS/util/json_tensor.cc:422-428",
    ),
    (
        {"signature_name": "single", "inputs": [[1, 2], 3]},
        "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        "TFS/util/json_tensor.cc:395-403",
    ),
    (
        {"signature_name": "single", "inputs": [[1, [2]], [3, 4]]},
        "Encountered list at unexpected level: 2 expected < 2",
        "TFS/util/json_tensor.cc:416-420",
    ),
    ({"inputs": {"x": [[1, 2]]}}, "Missing named input: s in 'inputs' object.", "TFS/util/json_tensor.cc:633-637"),
    ({"inputs": {"x": [[1, 2]], "s": [{"b64": "!!"}]}}, "Unable to base64 decode", "TFS/util/json_tensor.cc:383-387"),
    (
        {"inputs": {"x": [[1, 2]], "s": [{"b64": "AA==", "extra": 1}]}},
        'JSON Value: {\n    "b64": "AA==",\n    "extra": 1\n} not formatted correctly for base64 data',
        "TFS/util/json_tensor.cc:269-272, 358-381",
    ),
    (
        {"inputs": {"x": [[{"b64": "AA=="}, 1]], "s": ["a"]}},
        'JSON Value: {\n    "b64": "AA=="\n} Type: Object is not of expected type: float',
        "TFS/util/json_tensor.cc:405-409",
    ),
    (
        {"inputs": {"x": [[1, 2]], "s": [7]}},
        "JSON Value: 7 Type: Number is not of expected type: string",
        "TFS/util/json_tensor.cc:311-313",
    ),
    (
        {"inputs": {"x": [[True, 2]], "s": ["a"]}},
        "JSON Value: true Type: True is not of expected type: float",
        "TFS/util/json_tensor.cc:293-295, 95-112",
    ),
    (
        {"signature_name": "int64_in", "instances": [9223372036854775808]},
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 9223372036854775808 "
        "Type: Number is not of expected type: int64",
        "TFS/util/json_tensor.cc:316-319",
    ),
    (
        {"signature_name": "int64_in", "inputs": [1.0]},
        "JSON Value: 1.0 Type: Number is not of expected type: int64",
        "TFS/util/json_tensor.cc:316-319",
    ),
    (
        {"signature_name": "nope", "instances": [1]},
        'Serving signature name: "nope" not found in signature def',
        "TFS/model_servers/http_rest_api_handler.cc:233-239",
    ),
    (
        {"signature_name": "mixed_batch", "instances": [1.0, 2.0]},
        "Tensor name: total has inconsistent batch size: 1 expecting: 2",
        "TFS/util/json_tensor.cc:983-999",
    ),
]


@pytest.mark.parametrize("body, text, cited", PREDICT_ERRORS, ids=[str(i) for i in range(len(PREDICT_ERRORS))])
def test_predict_errors(server, body, text, cited):
    assert error_of(server, "POST", PREDICT, body) == (400, text), cited


def test_predict_model_lookup_errors(server):
    body = {"instances": ["x", "y"]}
    # the model is looked up after the body parses and before its values are converted
    # (TFS/model_servers/http_rest_api_handler.cc:159-171; http_rest_api_handler_test.cc:260-281, 310-319)
    assert error_of(server, "POST", "/v1/models/other:predict", body) == (
        404,
        "Servable not found for request: Latest(other)",
    )
    assert error_of(server, "POST", "/v1/models/tiny/versions/50:predict", body) == (
        404,
        "Servable not found for request: Specific(tiny, 50)",
    )
    assert error_of(server, "POST", "/v1/models/tiny/labels/can%61ry:predict", body) == (
        400,
        "Unrecognized servable version label: canary",
    )  # decoded (http_rest_api_util.cc:123-129)
    assert error_of(server, "POST", "/v1/models/other:predict", "{bad") == (
        400,
        "JSON Parse error: Missing a name for object member. at offset: 1",
    )
    # the row format with mixed batch sizes is refused, the columnar one is not (json_tensor.cc:983-999)
    status, _, data = call(server, "POST", PREDICT, {"signature_name": "mixed_batch", "inputs": [1.0, 2.0]})
    assert (status, json.loads(data)) == (200, {"outputs": {"per_row": [1.0, 2.0], "total": [3.0]}})


# -- Classify / Regress (TFS/util/json_tensor.cc:707-872, servables/tensorflow/classifier.cc, regressor.cc) --
def serialized(example: dict) -> bytes:
    feature = {}
    for name, value in example.items():
        values = value if isinstance(value, list) else [value]
        if isinstance(values[0], str):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
        elif isinstance(values[0], float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_classify_and_regress_equal_the_saved_model(server, reference):
    examples = [{"v": 0.25}, {"v": 0.75, "word": "abc"}]
    status, _, data = call(server, "POST", CLASSIFY, {"signature_name": "classification", "examples": examples})
    assert status == 200, data
    expected = reference["classification"](inputs=tf.constant([serialized(e) for e in examples]))["scores"].numpy()
    results = json.loads(data)["results"]
    assert [[label for label, _ in row] for row in results] == [["no", "yes"]] * 2
    np.testing.assert_array_equal(np.array([[s for _, s in row] for row in results], np.float32), expected)
    # layout: rows on one line, then the closing bracket on its own (json_tensor.cc:1075-1101)
    assert data == b'{\n    "results": [[["no", 0.75], ["yes", 0.25]], [["no", 0.25], ["yes", 0.75]]\n    ]\n}'

    # the context is serialized in front of each example, so an example's own feature wins
    # (TFS/servables/tensorflow/util.cc:183-203; json_tensor.cc:826-834)
    body = {
        "signature_name": "regression",
        "context": {"k": 3, "word": "xy"},
        "examples": [{"v": 1.5}, {"v": 2.0, "k": 10}],
    }
    status, _, data = call(server, "POST", REGRESS, body)
    assert status == 200, data
    expected = reference["regression"](
        inputs=tf.constant([serialized({"k": 3, "word": "xy"}) + serialized(e) for e in body["examples"]])
    )["outputs"].numpy()
    assert json.loads(data) == {"results": expected.tolist()} == {"results": [6.5, 22.0]}
    assert data == b'{\n    "results": [6.5, 22.0]\n}'  # json_tensor.cc:1111-1126


FEATURE_CASES = [
    # (feature value, regress answer for v=1 or error, cited)
    (True, 1.0, "bools are int64 0/1: TFS/util/json_tensor.cc:744-750"),
    ([2], 2.0, "a one-element list: TFS/util/json_tensor.cc:806-812"),
    (None, "Feature: k has element with unexpected JSON type: Null", "TFS/util/json_tensor.cc:740-743; _test.cc:1491"),
    (
        [[1]],
        "Feature: k has element with unexpected JSON type: Array",
        "TFS/util/json_tensor.cc:763-766; _test.cc:1521",
    ),
    ({"a": 1}, "Feature: k has element with unexpected JSON type: Object", "TFS/util/json_tensor.cc:751-756"),
    (
        [1, 2.5],
        "Unexpected element type in feature: k expecting type: int64",
        "TFS/util/json_tensor.cc:709-733, 774-778; _test.cc:1501",
    ),
    ([1, "a"], "Unexpected element type in feature: k expecting type: int64", "TFS/util/json_tensor.cc:767-770"),
    (
        18446744073709551615,
        "Feature: k has uint64_t element. Only int64_t is supported.",
        "TFS/util/json_tensor.cc:784-787; _test.cc:1531",
    ),
    ({"b64": "!"}, "Unable to base64 decode", "TFS/util/json_tensor.cc:757-761, 383-387"),
]


@pytest.mark.parametrize("value, answer, cited", FEATURE_CASES, ids=[str(i) for i in range(len(FEATURE_CASES))])
def test_feature_conversion(server, value, answer, cited):
    body = {"signature_name": "regression", "examples": [{"v": 1.0, "k": value}]}
    status, _, data = call(server, "POST", REGRESS, body)
    if isinstance(answer, float):
        assert (status, json.loads(data)) == (200, {"results": [answer]}), cited
    else:
        assert (status, json.loads(data)["error"]) == (400, answer), cited


def test_out_of_range_numbers_answer_instead_of_dropping_the_connection(server):
    # beyond uint64 rapidjson reads a double (json_tensor.cc:775-779): a float feature, which the model's
    # int64 parse then refuses with TensorFlow's own error (a 400, not a dropped connection)
    body = {"signature_name": "regression", "examples": [{"v": 1.0, "k": 123456789012345678901234567890}]}
    status, _, data = call(server, "POST", REGRESS, body)
    assert status == 400 and "Data types don't match" in json.loads(data)["error"]
    # a whole-valued float literal stays a float; ints stay int64 (json_tensor.cc:774-790)
    status, _, data = call(server, "POST", REGRESS, {"signature_name": "regression", "examples": [{"v": 2, "k": 1}]})
    assert status == 400 and "Data types don't match" in json.loads(data)["error"]
    # strings and base64 are bytes features (json_tensor.cc:757-773)
    for word in ("héllo", {"b64": "aGkh"}):
        body = {"signature_name": "regression", "examples": [{"v": 0.0, "word": word}]}
        status, _, data = call(server, "POST", REGRESS, body)
        assert (status, json.loads(data)) == (200, {"results": [6.0 if word == "héllo" else 3.0]})


EXAMPLE_ERRORS = [
    (
        CLASSIFY,
        {"signature_name": "classification"},
        400,
        'JSON Value: {\n    "signature_name": "classification"\n'
        "} When method is classify, key 'examples' is expected and was not found",
        "TFS/util/json_tensor.cc:837-842",
    ),
    (
        REGRESS,
        {"examples": 3},
        400,
        "JSON Value: {\n    \"examples\": 3\n} Expecting 'examples' value to be an list/array",
        "TFS/util/json_tensor.cc:843-847",
    ),
    (
        REGRESS,
        {"examples": []},
        400,
        "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array",
        "TFS/util/json_tensor.cc:848-851",
    ),
    (
        CLASSIFY,
        {"examples": [1]},
        400,
        "Example must be JSON object but got JSON Number",
        "TFS/util/json_tensor.cc:798-800; _test.cc:1464",
    ),
    (
        CLASSIFY,
        {"context": [], "examples": [{}]},
        400,
        "Example must be JSON object but got JSON Array",
        "TFS/util/json_tensor.cc:828-834, 798-800",
    ),
    # TF Serving's Classify and Regress take the signature's input named "inputs" only
    (
        CLASSIFY,
        {"signature_name": "classify_examples", "examples": [{"v": 1.0}]},
        400,
        "No classification inputs found in SignatureDef: ",
        "TFS/servables/tensorflow/classifier.cc:194-199",
    ),
    (
        CLASSIFY,
        {"examples": [{"v": 1.0}]},
        400,
        "Expected one input Tensor.",
        "TFS/servables/tensorflow/classifier.cc:185-187",
    ),
    (
        CLASSIFY,
        {"signature_name": "single", "examples": [{"v": 1.0}]},
        400,
        "No classification inputs found in SignatureDef: ",
        "TFS/servables/tensorflow/classifier.cc:194-199",
    ),
    (
        CLASSIFY,
        {"signature_name": "nope", "examples": [{"v": 1.0}]},
        400,
        "No signature was found with the name: nope",
        "TFS/servables/tensorflow/classifier.cc:157-161",
    ),
    (
        REGRESS,
        {"signature_name": "classification", "examples": [{"v": 1.0}]},
        400,
        "Expected one output Tensor.",
        "TFS/servables/tensorflow/regressor.cc:182-184",
    ),
    (
        REGRESS,
        {"signature_name": "identity", "examples": [{"v": 1.0}]},
        400,
        "No regression inputs found in SignatureDef: ",
        "TFS/servables/tensorflow/regressor.cc:186-191",
    ),
    (
        REGRESS,
        {"examples": [{"v": 1.0}]},
        400,
        "Expected one input Tensor.",
        "TFS/servables/tensorflow/regressor.cc:179-181",
    ),
    (
        "/v1/models/other:regress",
        {"examples": [{"v": 1.0}]},
        404,
        "Servable not found for request: Latest(other)",
        "TFS/core/basic_manager.cc:139",
    ),
]


@pytest.mark.parametrize(
    "path, body, code, text, cited", EXAMPLE_ERRORS, ids=[str(i) for i in range(len(EXAMPLE_ERRORS))]
)
def test_classify_regress_errors(server, path, body, code, text, cited):
    status, message = error_of(server, "POST", path, body)
    assert status == code, cited
    assert message == text or (text.endswith(": ") and message.startswith(text)), (message, cited)


# -- metadata (TFS/model_servers/http_rest_api_util.cc:147-201) --------------------------------------------
def test_metadata_prints_default_valued_fields(server, model_dir):
    status, _, data = call(server, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    metadata = json.loads(data)
    # always_print_fields_with_no_presence (http_rest_api_util.cc:150-151): empty signature_name, "defaults": {},
    # "unknown_rank": false and empty dim names are printed, as in TFS/servables/tensorflow/testdata/
    # saved_model_half_plus_two_2_versions_metadata.json
    assert metadata["model_spec"] == {"name": MODEL, "signature_name": "", "version": str(VERSION)}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["classification"]
    assert signature["defaults"] == {} and signature["method_name"] == "tensorflow/serving/predict"
    shape = signature["inputs"]["inputs"]["tensor_shape"]
    assert shape == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert signature["inputs"]["inputs"]["dtype"] == "DT_STRING"
    assert "__saved_model_init_op" in metadata["metadata"]["signature_def"]["signature_def"]


# -- gRPC (the same servables behind TFS/model_servers/prediction_service_impl.cc) ---------------------------
@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def rpc_error(call, request_proto) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call(request_proto, timeout=60)
    return error.value.code(), error.value.details()


def test_grpc_predict_equals_the_saved_model_and_refuses_like_tf_serving(stubs, reference):
    predict = stubs[0].Predict
    request_proto = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    request_proto.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1, 2], [3, 4]], np.float32)))
    request_proto.inputs["s"].CopyFrom(tf.make_tensor_proto([b"a", b"bcd"]))
    response = predict(request_proto, timeout=60)
    expected = reference["serving_default"](x=tf.constant([[1, 2], [3, 4]], tf.float32), s=tf.constant([b"a", b"bcd"]))
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["sum"]), expected["sum"].numpy())
    # MakeModelSpec: name, resolved signature, version (TFS/servables/tensorflow/util.cc:261-275)
    assert (response.model_spec.signature_name, response.model_spec.version.value) == ("serving_default", VERSION)
    assert response.outputs["sum"].float_val and not response.outputs["sum"].tensor_content  # AsProtoField

    unknown = predict_pb2.PredictRequest(model_spec={"name": MODEL, "signature_name": "nope"})
    assert rpc_error(predict, unknown) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )  # predict_util.cc:87-91
    extra = predict_pb2.PredictRequest()
    extra.CopyFrom(request_proto)
    extra.inputs["z"].CopyFrom(tf.make_tensor_proto([1.0]))
    assert rpc_error(predict, extra) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (  # predict_util.cc:51-73
            "input size does not match signature: 3!=2 len({s,x,z}) != len({s,x}). Sent extra: {z}. "
            "Missing but required: {}."
        ),
    )
    renamed = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    renamed.inputs["x"].CopyFrom(request_proto.inputs["x"])
    renamed.inputs["t"].CopyFrom(request_proto.inputs["s"])
    code, details = rpc_error(predict, renamed)  # tensorflow/cc/saved_model/util.cc GetInputValues
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("Signature input alias: s(feed name: ")
    wrong = predict_pb2.PredictRequest(model_spec={"name": MODEL, "signature_name": "single"})
    wrong.inputs["x"].CopyFrom(tf.make_tensor_proto([["a", "b"]]))
    code, details = rpc_error(predict, wrong)  # the session's own dtype check, as in TF Serving's Session::Run
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "to be float but string is provided" in details
    filtered = predict_pb2.PredictRequest()
    filtered.CopyFrom(request_proto)
    filtered.output_filter.append("nope")
    assert rpc_error(predict, filtered) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (  # predict_util.cc:137-147
            "output tensor alias not found in signature: nope Outputs expected to be in the set {length,sum}."
        ),
    )
    assert rpc_error(predict, predict_pb2.PredictRequest(model_spec={"name": "other"})) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(other)",
    )  # basic_manager.cc:139
    assert rpc_error(predict, predict_pb2.PredictRequest(model_spec={"name": MODEL, "version_label": "stable"})) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: stable",
    )  # server_core.cc:890-891


def test_grpc_classify_regress_metadata_status(stubs, reference):
    predict, model_service = stubs
    classify = classification_pb2.ClassificationRequest(model_spec={"name": MODEL, "signature_name": "classification"})
    classify.input.example_list.examples.add().ParseFromString(serialized({"v": 0.25}))
    response = predict.Classify(classify, timeout=60)
    assert [(c.label, c.score) for c in response.result.classifications[0].classes] == [("no", 0.75), ("yes", 0.25)]
    assert response.model_spec.signature_name == "classification"
    assert rpc_error(
        predict.Classify,
        classification_pb2.ClassificationRequest(model_spec={"name": MODEL, "signature_name": "classification"}),
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")  # TFS/servables/tensorflow/util.cc:165-168
    named_examples = classification_pb2.ClassificationRequest(
        model_spec={"name": MODEL, "signature_name": "classify_examples"}
    )
    named_examples.input.CopyFrom(classify.input)
    code, details = rpc_error(predict.Classify, named_examples)  # classifier.cc:194-199
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("No classification inputs found")

    regress = regression_pb2.RegressionRequest(model_spec={"name": MODEL, "signature_name": "regression"})
    with_context = regress.input.example_list_with_context
    with_context.context.ParseFromString(serialized({"k": 4}))
    with_context.examples.add().ParseFromString(serialized({"v": 0.5}))
    assert [r.value for r in predict.Regress(regress, timeout=60).result.regressions] == [2.0]

    metadata = predict.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL}, metadata_field=["signature_def"]),
        timeout=60,
    )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_map)
    assert signature_map.signature_def["regression"].outputs["outputs"].dtype == tf.float32.as_datatype_enum
    assert rpc_error(
        predict.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL})
    ) == (
        grpc.StatusCode.INVALID_ARGUMENT,  # get_model_metadata_impl.cc:35-39
        "GetModelMetadataRequest must specify at least one metadata_field",
    )
    assert rpc_error(
        predict.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")

    status = model_service.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL}), timeout=60
    )
    assert [(s.version, s.state, s.status.error_code) for s in status.model_version_status] == [
        (VERSION, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
    ]
    assert rpc_error(
        model_service.GetModelStatus,
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL, "version": {"value": 3}}),
    ) == (grpc.StatusCode.NOT_FOUND, "Could not find version 3 of model tiny")  # get_model_status_impl.cc:83-88
    assert rpc_error(model_service.GetModelStatus, get_model_status_pb2.GetModelStatusRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    )  # get_model_status_impl.cc:66-68


# -- start-up (TFS/model_servers/server.cc:333, 374-417: ServerCore::Create loads before the ports open) ----
def test_ports_open_only_once_the_model_is_loaded(model_dir, tmp_path):
    base = tmp_path / MODEL
    base.mkdir()
    port_file = tmp_path / "ports"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "serve",
            "--model-name",
            MODEL,
            "--model-base-path",
            str(base),
            "--grpc-port",
            "0",
            "--rest-port",
            "0",
            "--port-file",
            str(port_file),
            "--poll-seconds",
            "0.2",
        ],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(4)
        assert process.poll() is None and not port_file.exists()  # no version yet: nothing listens
        shutil.copytree(model_dir / str(VERSION), base / "1")
        deadline = time.time() + 120
        while not port_file.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.1)
        ports = dict(item.split("=") for item in port_file.read_text().split())
        # the first answer on the freshly opened port already sees the version AVAILABLE
        status, _, data = request(int(ports["rest"]), "GET", f"/v1/models/{MODEL}")
        assert status == 200 and json.loads(data)["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        process.terminate()
        process.wait(timeout=30)

    broken = tmp_path / "broken" / MODEL / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"\x08not a graph")
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving",
            "serve",
            "--model-name",
            MODEL,
            "--model-base-path",
            str(broken.parent),
            "--grpc-port",
            "0",
            "--rest-port",
            "0",
            "--port-file",
            str(tmp_path / "never"),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1 and not (tmp_path / "never").exists()  # a model that fails to load: no server
    assert "not serving: version 1 of model tiny failed to load" in failed.stdout + failed.stderr


# -- the export check (serving/signatures.py) -----------------------------------------------------------
def test_export_check_applies_tf_servings_rules(model_dir):
    path = str(model_dir / str(VERSION))
    assert signatures.problems(path) == []  # serving_default/classification/regression by the pipeline's names
    found = signatures.problems(
        path,
        {
            "classify_examples": signatures.CLASSIFY,
            "single": signatures.REGRESS,
            "bytes_out": signatures.REGRESS,
            "missing": signatures.PREDICT,
        },
    )
    assert [f.split(":")[0] for f in found] == [
        'signature "bytes_out" (regress)',
        'signature "classify_examples" (classify)',
        'signature "missing" (predict)',
        'signature "single" (regress)',
    ]
    assert found[0].endswith("Expected one output Tensor.")  # regressor.cc:182-184
    assert found[1].startswith(
        'signature "classify_examples" (classify): No classification inputs found in SignatureDef'
    ) and found[1].endswith('(rename the input to "inputs")')
    assert "not in the export" in found[2]
    assert "No regression inputs found" in found[3]
    with pytest.raises(signatures.SignatureError, match="is not valid for TF Serving"):
        signatures.check_exported_signatures(path, {"classify_examples": signatures.CLASSIFY})
