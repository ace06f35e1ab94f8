"""A small SavedModel with the signature shapes TF Serving distinguishes, and a real
`python -m serving serve` process around it (shared by the conformance and load tests and
the serving benchmark)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
MODEL = "tiny"
VERSION = 7


def build_tiny_model(export_dir: str | os.PathLike) -> None:
    """Signatures: two inputs (serving_default), one float input (single), float identity,
    a "_bytes" output, outputs of different batch sizes, int64 input, a Classify and a
    Regress signature with the input named "inputs", and a classifier whose input is
    named "examples" (what TF Serving's Classify refuses)."""
    import tensorflow as tf

    def parse(serialized):
        return tf.io.parse_example(
            serialized,
            {
                "v": tf.io.FixedLenFeature([], tf.float32),
                "k": tf.io.FixedLenFeature([], tf.int64, default_value=1),
                "word": tf.io.FixedLenFeature([], tf.string, default_value=""),
            },
        )

    class Tiny(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x"), tf.TensorSpec([None], tf.string, name="s")]
        )
        def two_inputs(self, x, s):
            return {"sum": tf.reduce_sum(x, axis=1), "length": tf.strings.length(s)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def single(self, x):
            return {"doubled": x * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def identity(self, x):
            return {"y": tf.identity(x)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def bytes_out(self, s):
            return {"echo_bytes": tf.identity(s), "echo": tf.identity(s)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def mixed_batch(self, x):
            return {"per_row": x, "total": tf.reshape(tf.reduce_sum(x), [1])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
        def int64_in(self, n):
            return {"next": n + 1}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            v = parse(inputs)["v"]
            scores = tf.stack([1.0 - v, v], axis=1)
            return {"classes": tf.tile(tf.constant([[b"no", b"yes"]]), [tf.shape(v)[0], 1]), "scores": scores}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs):
            features = parse(inputs)
            return {
                "outputs": features["v"] * tf.cast(features["k"], tf.float32)
                + tf.cast(tf.strings.length(features["word"]), tf.float32)
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify_examples(self, examples):
            return self.classify(examples)

    module = Tiny()
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={
            "serving_default": module.two_inputs,
            "single": module.single,
            "identity": module.identity,
            "bytes_out": module.bytes_out,
            "mixed_batch": module.mixed_batch,
            "int64_in": module.int64_in,
            "classification": module.classify,
            "regression": module.regress,
            "classify_examples": module.classify_examples,
        },
    )


@dataclass
class Server:
    process: subprocess.Popen
    rest_port: int
    grpc_port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(base: Path, workdir: Path, *extra: str, timeout: float = 180) -> Server:
    """`python -m serving serve` on 127.0.0.1, both APIs on free ports."""
    port_file, log_path = workdir / "ports", workdir / "server.log"
    port_file.unlink(missing_ok=True)
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
                "0.3",
                *extra,
            ],
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.time() + timeout
    while not port_file.exists():
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    ports = dict(item.split("=") for item in port_file.read_text().split())
    return Server(process, int(ports["rest"]), int(ports["grpc"]), log_path)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict, bytes]:
    """One HTTP request with the path sent exactly as given; (status, headers, body)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        if connection is None:
            conn.close()
