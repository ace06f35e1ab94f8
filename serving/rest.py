"""TF Serving's REST API (port 8501 in the `tensorflow/serving` image).

    GET  /v1/models/NAME[/versions/V | /labels/L]            model status
    GET  /v1/models/NAME[/versions/V | /labels/L]/metadata   signature defs
    POST /v1/models/NAME[/versions/V | /labels/L]:predict    {"instances": [...]} or {"inputs": ...}
    POST /v1/models/NAME[/versions/V | /labels/L]:classify   {"examples": [{feature: value}], "context": {...}}
    POST /v1/models/NAME[/versions/V | /labels/L]:regress    same as classify

Routing, status codes and bodies follow tensorflow/serving (at 9d981c5c):
model_servers/http_server.cc (dispatch on "(?i)/v1/.*", OPTIONS preflight, status -> HTTP
code), model_servers/http_rest_api_util.cc (the route regexes, percent-decoding of the
model name and label, version parsing) and http_rest_api_handler.cc (what each route
does); util/net_http/ (libevent) for what never reaches the handler: a path outside /v1/
is libevent's HTML 404, a method it does not allow its 501, a request line it cannot parse
its 400; a gzip body is inflated. Bodies are `serving.json_tensor`'s.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

from google.protobuf import json_format
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, get_model_status_pb2, regression_pb2

from serving import json_tensor, tf_json
from serving.model import ServingError, invalid
from serving.repository import ModelRepository

LOG = logging.getLogger(__name__)

# http_rest_api_util.cc:31-34 (RE2 FullMatch, case-insensitive); http_rest_api_util.h:33 dispatches.
PREDICTION_API = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
MODEL_STATUS_API = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)
DISPATCH = re.compile(r"(?i)/v1/.*")
# http_server.cc:250-291
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
# libevent accepts these (evhttp_server.cc:114-117); the others it answers 501 itself.
ALLOWED_METHODS = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}
KNOWN_METHODS = ALLOWED_METHODS | {"TRACE", "CONNECT"}
# RFC 3986 characters libevent's strict evhttp_uri_parse accepts in a path, query and fragment.
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#]|%[0-9A-Fa-f]{2})*$")
_REASONS = {400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}
INT64_MAX = 2**63 - 1


class NoBodyError(ServingError):
    """A ParseModelInfo error: ProcessRequest returns it before MakeJsonFromStatus, so the
    answer has no body (http_rest_api_handler.cc:80-82, 107)."""


def _decode_arg(text: str) -> str:
    """DecodeArg (http_rest_api_util.cc:69-88): curl_easy_unescape, %XX only ("+" stays)."""
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


class RestApi:
    """HttpRestApiHandler::ProcessRequest: (HTTP status, body) for one request."""

    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def process(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            output = self._dispatch(method, path, body)
            return 200, output
        except NoBodyError as e:
            return HTTP_STATUS.get(e.code, 500), b""
        except ServingError as e:
            return HTTP_STATUS.get(e.code, 500), tf_json.error_body(e.message)
        except RecursionError:
            return 400, tf_json.error_body("JSON Parse error: nesting too deep")
        except Exception as e:  # a fault here must still answer, never drop the connection
            LOG.exception("%s %s failed", method, path)
            return 500, tf_json.error_body(f"{type(e).__name__}: {e}")

    def _dispatch(self, method: str, path: str, body: bytes) -> bytes:
        malformed = invalid(f"Malformed request: {method} {path}")  # http_rest_api_handler.cc:74-75
        match = None
        if method == "POST":
            match = PREDICTION_API.fullmatch(path)
        elif method == "GET":
            match = MODEL_STATUS_API.fullmatch(path)
        name, version, label = self._model_info(match)
        if match is None:
            raise malformed
        if method == "POST":
            verb = match.group(4)
            if verb == "classify":
                return self.classify(name, version, label, body)
            if verb == "regress":
                return self.regress(name, version, label, body)
            if verb == "predict":
                return self.predict(name, version, label, body)
            raise malformed  # the verb matched case-insensitively but is compared exactly (handler.cc:86-96)
        if match.group(4) == "metadata":
            return self.metadata(name, version, label)
        return self.status(name, version, label)

    @staticmethod
    def _model_info(match) -> tuple[str, int | None, str | None]:
        """ParseModelInfo (http_rest_api_util.cc:90-131)."""
        if match is None:
            return "", None, None
        name = _decode_arg(match.group(1)) if match.group(1) else ""
        version = label = None
        if match.group(2):
            version = int(match.group(2))
            if version > INT64_MAX:
                raise NoBodyError("INVALID_ARGUMENT", f"Failed to convert version: {match.group(2)} to numeric.")
        if match.group(3):
            label = _decode_arg(match.group(3))
        return name, version, label

    # -- the five routes ----------------------------------------------------------------------------
    def predict(self, name, version, label, body: bytes) -> bytes:
        """ProcessPredictRequest (http_rest_api_handler.cc:152-178)."""
        doc = json_tensor.parse_body(body)
        sig_name = json_tensor.signature_name(doc)
        model = self.repository.get(name, version, label)
        signature = model.signature_defs.get(sig_name or "serving_default")
        if signature is None:  # GetInfoMap (http_rest_api_handler.cc:228-242)
            raise invalid(f'Serving signature name: "{sig_name or "serving_default"}" not found in signature def')
        dtypes = {alias: info.dtype for alias, info in signature.inputs.items()}
        inputs, fmt = json_tensor.predict_inputs(doc, dtypes, sig_name)
        _, outputs = model.run_predict(sig_name, inputs)
        return json_tensor.predict_response(outputs, fmt)

    def _examples_request(self, request, name, version, label, body: bytes):
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        doc = json_tensor.parse_body(body)
        request.model_spec.signature_name = json_tensor.signature_name(doc)
        request.input.CopyFrom(json_tensor.example_input(doc))
        return request

    def classify(self, name, version, label, body: bytes) -> bytes:
        """ProcessClassifyRequest (http_rest_api_handler.cc:111-130)."""
        request = self._examples_request(classification_pb2.ClassificationRequest(), name, version, label, body)
        response = self.repository.get(name, version, label).classify(request)
        return json_tensor.classification_response(response.result)

    def regress(self, name, version, label, body: bytes) -> bytes:
        """ProcessRegressRequest (http_rest_api_handler.cc:132-150)."""
        request = self._examples_request(regression_pb2.RegressionRequest(), name, version, label, body)
        response = self.repository.get(name, version, label).regress(request)
        return json_tensor.regression_response(response.result)

    def status(self, name, version, label) -> bytes:
        """ProcessModelStatusRequest (http_rest_api_handler.cc:180-202): a label is not
        looked up there (GetModelStatusImpl reads only the version)."""
        if not name:
            raise invalid("Missing model name in request.")
        response = get_model_status_pb2.GetModelStatusResponse()
        for row in self.repository.status(name, version):
            status = response.model_version_status.add(version=row.version, state=row.state)
            status.status.error_code = row.error_code_number
            status.status.error_message = row.error_message
        return (
            json.dumps(json_format.MessageToDict(response, always_print_fields_with_no_presence=True), indent=1) + "\n"
        ).encode()

    def metadata(self, name, version, label) -> bytes:
        """ProcessModelMetadataRequest (http_rest_api_handler.cc:204-226) and its JSON
        (http_rest_api_util.cc:147-201): every field printed, default values included."""
        if not name:
            raise invalid("Missing model name in request.")
        model = self.repository.get(name, version, label)
        response = model.metadata(get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"]))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)

        def as_json(message) -> str:
            return json.dumps(
                json_format.MessageToDict(
                    message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
                ),
                indent=1,
            )

        return (
            "{\n"
            + '"model_spec":'
            + as_json(response.model_spec)
            + ",\n"
            + '"metadata": {'
            + '"signature_def": '
            + as_json(signatures)
            + "}\n"
            + "}\n"
        ).encode()


def _libevent_error(code: int) -> bytes:
    """evhttp_send_error's page."""
    reason = _REASONS[code]
    return (
        f"<HTML><HEAD>\n<TITLE>{code} {reason}</TITLE>\n</HEAD><BODY>\n<H1>{reason}</H1>\n</BODY></HTML>\n"
    ).encode()


class RestHandler(BaseHTTPRequestHandler):
    api: RestApi  # set by start_rest_server
    cors: bool = False
    protocol_version = "HTTP/1.1"  # keep-alive, as libevent
    disable_nagle_algorithm = True  # headers and body are two writes; without this each answer waits ~40 ms
    server_version = "tf-serving-standin"
    sys_version = ""

    def log_message(self, fmt, *args):  # to logging, not stderr
        LOG.debug("%s " + fmt, self.address_string(), *args)

    def _reply(self, status: int, body: bytes, content_type: str | None, close: bool = False) -> None:
        self.send_response(status, _REASONS.get(status) if status in (400, 404, 501) else None)
        if content_type:
            self.send_header("Content-Type", content_type)
        if self.cors:  # AddCORSHeaders (http_rest_api_util.cc:40-44), only with --enable-cors-support
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "POST, GET")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        """The request body (chunked or by length); a gzip one inflated
        (evhttp_request.cc: auto_uncompress_input, on by default); None if unreadable."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip() or b"x", 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            body = b"".join(chunks)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return None
            if length < 0:
                return None
            body = self.rfile.read(length) if length else b""
        if "gzip" in (self.headers.get("Content-Encoding") or ""):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                body = b""  # ReadRequestGzipBytes gives no bytes: the body reads as empty
        return body

    def handle_one_request(self):
        """One request, as libevent and then http_server.cc's dispatcher treat it."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self._reply(400, _libevent_error(400), "text/html; charset=ISO-8859-1", close=True)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # BaseHTTPRequestHandler already answered 400
                return
            self._handle()
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _handle(self) -> None:
        method, target = self.command, self.path
        if method not in KNOWN_METHODS:
            self._reply(400, _libevent_error(400), "text/html; charset=ISO-8859-1", close=True)
            return
        if method not in ALLOWED_METHODS:
            self._reply(501, _libevent_error(501), "text/html; charset=ISO-8859-1", close=True)
            return
        body = self._read_body()
        if body is None:
            self._reply(400, _libevent_error(400), "text/html; charset=ISO-8859-1", close=True)
            return
        if re.match(r"(?i)^https?://", target):  # absolute-form: libevent keeps the path on
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        if not target.startswith("/") or not _URI_CHARS.match(target):
            self._reply(400, _libevent_error(400), "text/html; charset=ISO-8859-1", close=True)
            return
        if not DISPATCH.fullmatch(target):  # RestApiRequestDispatcher::Dispatch: not ours -> libevent 404
            self._reply(404, _libevent_error(404), "text/html; charset=ISO-8859-1", close=True)
            return
        if method == "OPTIONS":  # CORS preflight (http_server.cc:374-381): no JSON, no body
            ok = re.search(r"https?://", self.headers.get("Origin") or "")
            self._reply(200 if ok else 400, b"", "text/html; charset=ISO-8859-1")
            return
        status, output = self.api.process(method, target, body)
        self._reply(status, output, "application/json")


def start_rest_server(
    repository: ModelRepository, host: str, port: int, enable_cors_support: bool = False
) -> tuple[ThreadingHTTPServer, int]:
    """Serve in a background thread; returns the server and its port (0 picks a free one)."""
    handler = type("BoundRestHandler", (RestHandler,), {"api": RestApi(repository), "cors": enable_cors_support})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    bound = server.server_address[1]
    LOG.info("REST API on http://%s:%d/v1/models/%s", host, bound, repository.name)
    return server, bound
