"""The model server under concurrent load: 16 clients, 2,400 requests, valid and invalid mixed.

Every request must get an answer on its connection (no reset, no dropped connection); every
invalid one a 4xx with TF Serving's {"error": ...} body; every valid one exactly what the
SavedModel computes in-process (JSON floats are written so that they read back to the same
float32, json_tensor.cc:124-170). Sized to finish in about 30 s on a busy 2-core machine;
the speed itself is measured by `python -m benchmarks.serving`, not asserted here.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving_support import MODEL, VERSION, build_tiny_model, start_server

pytestmark = pytest.mark.integration  # a model server process under concurrent clients

CLIENTS, PER_CLIENT, GRPC_CLIENTS = 16, 150, 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("load_base") / MODEL
    build_tiny_model(base / str(VERSION))
    server = start_server(base, tmp_path_factory.mktemp("load_server"))
    yield server, tf.saved_model.load(str(base / str(VERSION))).signatures
    server.stop()


def example(v: float, k: int) -> bytes:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "v": tf.train.Feature(float_list=tf.train.FloatList(value=[v])),
                "k": tf.train.Feature(int64_list=tf.train.Int64List(value=[k])),
            }
        )
    ).SerializeToString()


def valid_requests(signatures, rng: random.Random, n: int) -> list[tuple[str, dict, object]]:
    """(path, body, expected answer) computed by the SavedModel itself."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:  # row format, two inputs
            x = np.array([[rng.uniform(-5, 5), rng.uniform(-5, 5)] for _ in range(rng.randint(1, 4))], np.float32)
            s = [rng.choice(["a", "bb", "ccc", ""]) for _ in range(len(x))]
            got = signatures["serving_default"](x=tf.constant(x), s=tf.constant(s))
            out.append(
                (
                    f"/v1/models/{MODEL}:predict",
                    {"instances": [{"x": row.tolist(), "s": w} for row, w in zip(x, s)]},
                    {
                        "predictions": [
                            {"sum": got["sum"][j].numpy(), "length": int(got["length"][j])} for j in range(len(x))
                        ]
                    },
                )
            )
        elif kind == 1:  # columnar, one input
            x = np.array([[rng.uniform(-5, 5), rng.uniform(-5, 5)]], np.float32)
            out.append(
                (
                    f"/v1/models/{MODEL}:predict",
                    {"signature_name": "single", "inputs": x.tolist()},
                    {"outputs": signatures["single"](x=tf.constant(x))["doubled"].numpy()},
                )
            )
        elif kind == 2:  # classify
            v = np.float32(rng.random())
            scores = signatures["classification"](inputs=tf.constant([example(float(v), 1)]))["scores"].numpy()
            out.append(
                (
                    f"/v1/models/{MODEL}:classify",
                    {"signature_name": "classification", "examples": [{"v": float(v)}]},
                    {"results": [[["no", scores[0, 0]], ["yes", scores[0, 1]]]]},
                )
            )
        else:  # regress with a context
            v, k = np.float32(rng.uniform(0, 10)), rng.randint(1, 9)
            value = signatures["regression"](inputs=tf.constant([example(float(v), k)]))["outputs"].numpy()[0]
            out.append(
                (
                    f"/v1/models/{MODEL}:regress",
                    {"signature_name": "regression", "context": {"k": k}, "examples": [{"v": float(v)}]},
                    {"results": [value]},
                )
            )
    return out


INVALID = [  # (method, path, body, status)
    ("POST", f"/v1/models/{MODEL}:predict", b'{"instances": [', 400),
    ("POST", f"/v1/models/{MODEL}:predict", b'{"inputs": {"x": [[1, 2]], "s": [{"b64": "@@"}]}}', 400),
    (
        "POST",
        f"/v1/models/{MODEL}:regress",
        b'{"signature_name": "regression", "examples": [{"v": 1.0, "k": 18446744073709551615}]}',
        400,
    ),
    (
        "POST",
        f"/v1/models/{MODEL}:regress",
        b'{"signature_name": "regression", "examples": [{"v": 1.0, "k": 1e400}]}',
        400,
    ),
    (
        "POST",
        f"/v1/models/{MODEL}:regress",
        b'{"signature_name": "regression", "examples": [{"v": 1.0, "k": 123456789012345678901234567890}]}',
        400,
    ),
    ("POST", f"/v1/models/{MODEL}:classify", b'{"signature_name": "classify_examples", "examples": [{"v": 1.0}]}', 400),
    ("POST", "/v1/models/other:predict", b'{"instances": [1]}', 404),
    ("POST", f"/v1/models/{MODEL}/versions/3:predict", b'{"instances": [1]}', 404),
    ("GET", f"/v1/models/{MODEL}/labels/canary/metadata", None, 400),
    ("PUT", f"/v1/models/{MODEL}", b"{}", 400),
    ("POST", f"/v1/models/{MODEL}:predict", b'{"instances": [{"x": ["a", 1], "s": "q"}]}', 400),
    ("POST", f"/v1/models/{MODEL}:predict", b'{"signature_name": "nope", "instances": [1]}', 400),
]


def same(answer, expected) -> bool:
    """JSON answer == expected, floats compared as float32 (what TF Serving's JSON round-trips)."""
    if isinstance(expected, dict):
        return (
            isinstance(answer, dict)
            and answer.keys() == expected.keys()
            and all(same(answer[k], expected[k]) for k in expected)
        )
    if isinstance(expected, (list, np.ndarray)) and np.ndim(expected) > 0:
        return (
            isinstance(answer, list)
            and len(answer) == len(expected)
            and all(same(a, e) for a, e in zip(answer, expected))
        )
    if isinstance(expected, str):
        return answer == expected
    if isinstance(expected, (float, np.floating)):
        return isinstance(answer, float) and np.float32(answer) == np.float32(expected)
    return answer == expected


def test_concurrent_clients_get_exact_answers_and_tf_serving_errors(served):
    server, signatures = served
    rng = random.Random(16)
    pool = valid_requests(signatures, rng, 40)
    problems: list[str] = []
    counts = {"valid": 0, "invalid": 0, "grpc": 0}
    lock = threading.Lock()
    x = np.array([[1.5, -2.0]], np.float32)
    grpc_expected = signatures["single"](x=tf.constant(x))["doubled"].numpy()

    def http_client(seed: int):
        local = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
        try:
            for _ in range(PER_CLIENT):
                if local.random() < 0.3:
                    method, path, body, want = local.choice(INVALID)
                    conn.request(method, path, body=body)
                    response = conn.getresponse()
                    data = response.read()
                    kind = "invalid"
                    ok = (
                        response.status == want
                        and response.getheader("Content-Type") == "application/json"
                        and isinstance(json.loads(data).get("error"), str)
                        and json.loads(data)["error"]
                    )
                else:
                    path, body, expected = local.choice(pool)
                    conn.request("POST", path, body=json.dumps(body))
                    response = conn.getresponse()
                    data = response.read()
                    kind = "valid"
                    ok = response.status == 200 and same(json.loads(data), expected)
                with lock:
                    counts[kind] += 1
                    if not ok:
                        problems.append(f"{kind} {path}: {response.status} {data[:300]!r}")
        except Exception as e:  # a reset or dropped connection is a failure, not a crash of the test
            with lock:
                problems.append(f"client {seed}: {type(e).__name__}: {e}")
        finally:
            conn.close()

    def grpc_client(seed: int):
        local = random.Random(seed)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(PER_CLIENT):
                request = predict_pb2.PredictRequest(model_spec={"name": MODEL, "signature_name": "single"})
                valid = local.random() >= 0.3
                request.inputs["x"].CopyFrom(tf.make_tensor_proto(x if valid else np.array([["a", "b"]])))
                try:
                    answer = stub.Predict(request, timeout=120)
                    ok = valid and np.array_equal(tf.make_ndarray(answer.outputs["doubled"]), grpc_expected)
                except grpc.RpcError as e:
                    ok = not valid and e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details()
                with lock:
                    counts["grpc"] += 1
                    if not ok:
                        problems.append(f"grpc valid={valid} wrong answer")

    threads = [
        threading.Thread(target=grpc_client if i < GRPC_CLIENTS else http_client, args=(i,)) for i in range(CLIENTS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "clients still waiting after 600 s"
    assert not problems, problems[:10]
    assert sum(counts.values()) == CLIENTS * PER_CLIENT
    assert counts["valid"] > 1000 and counts["invalid"] > 300 and counts["grpc"] == GRPC_CLIENTS * PER_CLIENT
    print(
        f"{sum(counts.values())} requests from {CLIENTS} clients in {elapsed:.1f} s "
        f"({sum(counts.values()) / elapsed:.0f}/s): {counts}"
    )
    assert server.process.poll() is None  # the server is still up
