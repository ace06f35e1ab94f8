"""The pushed model served by `python -m serving serve`, through TF Serving's gRPC and REST APIs.

Answers must equal calling the SavedModel directly; refusals must be TF Serving's; the
README's curl requests must work as written; new versions, half-written staging copies
and a rollback must be picked up (or ignored) by the running server like TF Serving does.
The server runs on a copy of the first run's serving directory, which other tests read.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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

from serving import layout, signatures
from serving.json_tensor import example_input, parse_body
from serving.model import serve_meta_graph
from tests.taxi_sample import PROJECT_DIR, read_examples

pytestmark = pytest.mark.e2e
MODEL = "taxi_tips"


@dataclass
class Server:
    process: subprocess.Popen
    base: Path
    version: int
    rest: str
    channel: grpc.Channel
    log: Path

    @property
    def predict_stub(self):
        return prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    @property
    def model_stub(self):
        return model_service_pb2_grpc.ModelServiceStub(self.channel)


def http(url: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(first_run, tmp_path_factory):
    workdir = first_run[0]
    pushed = workdir / "serving" / MODEL
    version = layout.latest_version(str(pushed))
    root = tmp_path_factory.mktemp("served")
    base = root / MODEL
    shutil.copytree(pushed / str(version), base / str(version))
    port_file, log_path = root / "ports", root / "server.log"
    with open(log_path, "w") as log:
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
                "0.5",
            ],
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: port_file.exists() or process.poll() is not None, what="the server to listen")
        assert process.poll() is None, log_path.read_text()
        ports = dict(item.split("=") for item in port_file.read_text().split())
        rest = f"http://127.0.0.1:{ports['rest']}"
        wait_for(
            lambda: (
                http(f"{rest}/v1/models/{MODEL}")[1].get("model_version_status", [{}])[0].get("state") == "AVAILABLE"
            ),
            what="the model to load",
        )
        yield Server(process, base, version, rest, grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}"), log_path)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def examples(first_run) -> list[bytes]:
    return read_examples(str(first_run[1] / "*.tfrecord.gz"), limit=32)


@pytest.fixture(scope="module")
def direct(server, examples) -> np.ndarray:
    """P(big tip) from the SavedModel itself, the reference every API answer must match."""
    model = tf.saved_model.load(str(server.base / str(server.version)))
    return model.signatures["serving_default"](examples=tf.constant(examples))["probabilities"].numpy()[:, 0]


def as_json_features(serialized: bytes) -> dict:
    """A tf.Example as TF Serving's classify JSON: ints as integers, floats with a fraction."""
    out = {}
    for name, feature in tf.train.Example.FromString(serialized).features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value)
        if kind == "bytes_list":
            values = [v.decode() for v in values]
        elif kind == "float_list":
            values = [float(v) for v in values]
        if values:
            out[name] = values if len(values) > 1 else values[0]
    return out


# -- gRPC -------------------------------------------------------------------------------------------
def test_grpc_status_and_metadata(server):
    status = server.model_stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL}))
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (server.version, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]

    metadata = server.predict_stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL}, metadata_field=["signature_def"])
    )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "classification", "transform_features"} <= set(signatures.signature_def)
    classification = signatures.signature_def["classification"]
    assert set(classification.outputs) == {"classes", "scores"}
    # TF Serving's Classify feeds the one input named "inputs" (classifier.cc:194-199)
    assert list(classification.inputs) == ["inputs"]
    assert classification.inputs["inputs"].dtype == tf.string.as_datatype_enum
    assert metadata.model_spec.version.value == server.version


def test_grpc_predict_and_classify_equal_the_saved_model(server, examples, direct):
    request = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    response = server.predict_stub.Predict(request)
    assert response.model_spec.version.value == server.version
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"])[:, 0], direct, rtol=0, atol=1e-6)

    request = classification_pb2.ClassificationRequest(model_spec={"name": MODEL, "signature_name": "classification"})
    request.input.example_list.examples.extend(tf.train.Example.FromString(e) for e in examples)
    result = server.predict_stub.Classify(request).result
    assert len(result.classifications) == len(examples)
    assert all([c.label for c in r.classes] == ["0", "1"] for r in result.classifications)
    scores = np.array([[c.score for c in r.classes] for r in result.classifications])
    np.testing.assert_allclose(scores[:, 1], direct, atol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)


def test_grpc_refuses_what_tf_serving_refuses(server, examples):
    def code_of(call, request):
        with pytest.raises(grpc.RpcError) as error:
            call(request)
        return error.value.code(), error.value.details()

    stub = server.predict_stub
    unknown = predict_pb2.PredictRequest(model_spec={"name": MODEL, "signature_name": "nope"})
    unknown.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples[:1]))
    assert code_of(stub.Predict, unknown) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )  # predict_util.cc:87-91
    wrong_dtype = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    wrong_dtype.inputs["examples"].CopyFrom(tf.make_tensor_proto([1.0, 2.0]))
    assert code_of(stub.Predict, wrong_dtype)[0] == grpc.StatusCode.INVALID_ARGUMENT
    # serving_default's input is "examples", not "inputs": not classifiable, as in TF Serving (classifier.cc:194-199)
    classify = classification_pb2.ClassificationRequest(model_spec={"name": MODEL})
    classify.input.example_list.examples.add().CopyFrom(tf.train.Example.FromString(examples[0]))
    code, details = code_of(stub.Classify, classify)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("No classification inputs found")
    regress = regression_pb2.RegressionRequest(model_spec={"name": MODEL, "signature_name": "classification"})
    regress.input.example_list.examples.add().CopyFrom(tf.train.Example.FromString(examples[0]))
    assert code_of(stub.Regress, regress)[0] == grpc.StatusCode.INVALID_ARGUMENT  # two outputs, no "outputs"
    other = predict_pb2.PredictRequest(model_spec={"name": "other_model"})
    assert code_of(stub.Predict, other)[0] == grpc.StatusCode.NOT_FOUND


# -- REST -------------------------------------------------------------------------------------------
def test_rest_predict_rows_and_columns_and_classify_equal_the_saved_model(server, examples, direct):
    url = f"{server.rest}/v1/models/{MODEL}"
    b64 = [{"b64": base64.b64encode(e).decode()} for e in examples]
    status, rows = http(f"{url}:predict", json.dumps({"instances": b64}).encode())
    assert status == 200, rows
    np.testing.assert_allclose(np.array(rows["predictions"])[:, 0], direct, atol=1e-6)
    status, columns = http(f"{url}:predict", json.dumps({"inputs": {"examples": b64}}).encode())
    assert status == 200, columns
    np.testing.assert_allclose(np.array(columns["outputs"])[:, 0], direct, atol=1e-6)

    body = {"signature_name": "classification", "examples": [as_json_features(e) for e in examples]}
    status, classified = http(f"{url}:classify", json.dumps(body).encode())
    assert status == 200, classified
    assert [[label for label, _ in r] for r in classified["results"]] == [["0", "1"]] * len(examples)
    np.testing.assert_allclose([r[1][1] for r in classified["results"]], direct, atol=1e-6)

    status, error = http(f"{url}:classify", json.dumps({"examples": [{"fare": 1}]}).encode())
    assert status == 400 and error["error"].startswith("No classification inputs found in SignatureDef")
    status, error = http(f"{server.rest}/v1/models/other_model")
    assert status == 404 and "error" in error


def readme_curls() -> list[tuple[str, str | None]]:
    """The taxi model's curl commands in the serving docs: (url, body) with the body read
    from -d @FILE or inline."""
    text = (PROJECT_DIR / "docs" / "serving.md").read_text()
    commands = [
        " ".join(line.strip().rstrip("\\") for line in block.splitlines())
        for block in re.findall(r"^curl .*?(?<!\\)$", text, flags=re.M | re.S)
    ]
    out = []
    for command in commands:
        tokens = shlex.split(command)
        url = next(t for t in tokens if t.startswith("http"))
        body = tokens[tokens.index("-d") + 1] if "-d" in tokens else None
        if body and body.startswith("@"):
            body = (PROJECT_DIR / body[1:]).read_text()
        out.append((url, body))
    return out


def serialized_in(body: dict) -> list[bytes]:
    """The tf.Examples a request body carries, in any of the README's three forms."""
    if "examples" in body:
        return [
            e.SerializeToString() for e in example_input(parse_body(json.dumps(body).encode())).example_list.examples
        ]
    values = body["instances"] if "instances" in body else body["inputs"]["examples"]
    return [base64.b64decode(v["b64"]) for v in values]


def test_the_readme_requests_work_as_written(server):
    curls = readme_curls()
    assert len(curls) >= 5, curls  # status, metadata, predict rows, predict columns, classify
    model = tf.saved_model.load(str(server.base / str(server.version)))
    seen = set()
    for url, body in curls:
        assert url.startswith("http://localhost:8501/v1/models/taxi_tips"), url
        status, answer = http(
            url.replace("http://localhost:8501", server.rest), body.encode() if body is not None else None
        )
        assert status == 200, (url, answer)
        seen.update(k for k in ("model_version_status", "metadata", "predictions", "outputs", "results") if k in answer)
        if body is None:
            continue
        expected = model.signatures["serving_default"](examples=tf.constant(serialized_in(json.loads(body))))[
            "probabilities"
        ].numpy()[:, 0]
        answered = (
            np.array(answer["predictions"])[:, 0]
            if "predictions" in answer
            else np.array(answer["outputs"])[:, 0]
            if "outputs" in answer
            else np.array([r[1][1] for r in answer["results"]])
        )
        np.testing.assert_allclose(answered, expected, atol=1e-6)
    assert seen == {"model_version_status", "metadata", "predictions", "outputs", "results"}


def test_the_pushed_model_is_valid_for_tf_serving(server):
    """The pipeline's export passes TF Serving's Predict/Classify rules (serving/signatures.py)."""
    path = str(server.base / str(server.version))
    assert signatures.default_apis(serve_meta_graph(path).signature_def) == {
        "serving_default": signatures.PREDICT,
        "classification": signatures.CLASSIFY,
    }
    signatures.check_exported_signatures(path)


def test_pushed_warmup_requests_are_replayed_on_load(server):
    warmup = server.base / str(server.version) / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.exists()
    count = sum(1 for _ in tf.data.TFRecordDataset(str(warmup)))
    assert count == 16  # 8 eval examples x 2 signatures, as InfraValidator sent them
    assert f"replayed {count} warm-up requests" in server.log.read_text()


# -- versions on a live server (last: it changes the served directory) ------------------------------
def served_version(server) -> int:
    """The AVAILABLE version (the repository unloads the old one once the new one is up)."""
    status = server.model_stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL}))
    available = [
        s.version for s in status.model_version_status if s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    ]
    assert len(available) == 1, status
    return available[0]


def test_staging_leftovers_new_versions_and_rollback_on_a_live_server(server, tmp_path, examples):
    base = server.base
    # A push that died mid-copy: a staging directory with a truncated graph is never loaded.
    staging = base / f"{layout.STAGING_PREFIX}{server.version + 10**6}-4242"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"\x08truncated")
    time.sleep(2)  # several polls
    assert served_version(server) == server.version
    assert "truncated" not in server.log.read_text() and f"{server.version + 10**6}" not in server.log.read_text()

    # A new version (same graph, another fingerprint) is published atomically and served.
    candidate = tmp_path / "candidate"
    shutil.copytree(base / str(server.version), candidate)
    (candidate / "fingerprint.pb").write_bytes(b"another model")
    new_dir, copied = layout.publish(str(candidate), str(base))
    new = int(os.path.basename(new_dir))
    assert copied and new > server.version
    wait_for(lambda: served_version(server) == new, what=f"version {new} to be served")

    # `python -m serving rollback`: the previous model comes back as a newer version.
    proc = subprocess.run(
        [sys.executable, "-m", "serving", "rollback", "--model-base-path", str(base)],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    back = layout.latest_version(str(base))
    assert f"version {new} withdrawn; version {server.version} re-published as {back}" in proc.stdout
    assert layout.fingerprint(str(base / str(back))) == layout.fingerprint(str(base / str(server.version)))
    wait_for(lambda: served_version(server) == back, what=f"rolled-back version {back} to be served")
    request = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples[:4], dtype=tf.string))
    assert server.predict_stub.Predict(request).model_spec.version.value == back
