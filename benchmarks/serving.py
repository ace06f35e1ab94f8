"""`make bench-serving`: the model server's requests/s and latency beside the SavedModel in-process.

    python -m benchmarks.serving [--model-base-path DIR --model-name NAME] [--requests N]
                                 [--clients C] [--batch B] [--output build/bench/serving.json]

Serves the latest pushed model (default: <serving_dir>/<model_name> of the default config,
i.e. what `make run` pushed) with `python -m serving serve`, and sends the same Predict
request (B serialized eval examples, `serving_default`) N times: over REST ({"instances":
[{"b64": ...}]}) and over gRPC, first from one client, then from C concurrent clients; and
runs it N times in this process on the SavedModel loaded with tf.saved_model.load (no
server, no serialization). Prints requests/s and p50/p99 latency of each; the numbers
depend on the machine and what else runs on it, so nothing here is a pass/fail.
"""

from __future__ import annotations

import argparse
import base64
import glob
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(name: str, latencies: list[float], elapsed: float, clients: int) -> dict:
    return {
        "path": name,
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def run_clients(clients: int, per_client: int, make_call) -> tuple[list[float], float]:
    """Each client thread gets its own call function (own connection); latencies of all calls."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client():
        call = make_call()
        mine = []
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                call()
                mine.append(time.perf_counter() - t)
        except Exception as e:  # reported, so a broken server is not mistaken for a fast one
            errors.append(f"{type(e).__name__}: {e}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, first: {errors[0]}")
    return latencies, time.perf_counter() - started


def eval_examples(count: int) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(str(PROJECT_DIR / "data" / "taxi" / "*.tfrecord.gz")))
    # as eval examples are (the label feature included: the signature parses only what it needs)
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--model-base-path", help="TF Serving model base path (default: the config's serving dir)")
    parser.add_argument("--model-name", help="default: the config's model_name")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the concurrent runs")
    parser.add_argument("--batch", type=int, default=1, help="examples per request")
    parser.add_argument("--output", default="build/bench/serving.json")
    args = parser.parse_args(argv)

    from pipeline.config import load_config
    from serving.layout import latest_version

    cfg = load_config(base_dir=PROJECT_DIR, check_files=False)
    name = args.model_name or cfg.model_name
    base = os.path.abspath(args.model_base_path or os.path.join(cfg.path("serving_dir"), cfg.model_name))
    version = latest_version(base)
    if version is None:
        print(f"error: no model version under {base}: run `make run` first, or pass --model-base-path", file=sys.stderr)
        return 2

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    examples = eval_examples(args.batch)
    body = json.dumps({"instances": [{"b64": base64.b64encode(e).decode()} for e in examples]}).encode()
    saved_model = tf.saved_model.load(os.path.join(base, str(version)))
    signature = saved_model.signatures["serving_default"]
    (input_key,) = signature.structured_input_signature[1].keys()
    results = []

    # in-process: the SavedModel's own signature, same examples, one thread
    tensor = tf.constant(examples)
    signature(**{input_key: tensor})  # trace/warm
    latencies, elapsed = run_clients(1, args.requests, lambda: lambda: signature(**{input_key: tf.constant(examples)}))
    results.append(summary("in-process SavedModel", latencies, elapsed, 1))

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        port_file = os.path.join(tmp, "ports")
        log = open(os.path.join(tmp, "server.log"), "w")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "serve",
                "--model-name",
                name,
                "--model-base-path",
                base,
                "--rest-port",
                "0",
                "--grpc-port",
                "0",
                "--port-file",
                port_file,
            ],
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while not os.path.exists(port_file):
                if server.poll() is not None:
                    raise RuntimeError(open(os.path.join(tmp, "server.log")).read()[-2000:])
                time.sleep(0.2)
            ports = dict(item.split("=") for item in open(port_file).read().split())
            rest_port, grpc_port = int(ports["rest"]), int(ports["grpc"])

            def rest_call():
                conn = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=120)

                def call():
                    conn.request("POST", f"/v1/models/{name}:predict", body=body)
                    response = conn.getresponse()
                    data = response.read()
                    if response.status != 200:
                        raise RuntimeError(data[:200])

                return call

            request = predict_pb2.PredictRequest(model_spec={"name": name})
            request.inputs[input_key].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))

            def grpc_call():
                stub = prediction_service_pb2_grpc.PredictionServiceStub(
                    grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
                )
                return lambda: stub.Predict(request, timeout=120)

            for label, make_call in (("REST predict", rest_call), ("gRPC predict", grpc_call)):
                run_clients(1, 20, make_call)  # warm
                for clients in (1, args.clients):
                    latencies, elapsed = run_clients(clients, max(1, args.requests // clients), make_call)
                    results.append(summary(label, latencies, elapsed, clients))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

    print(f"model {name} version {version}, {args.batch} example(s) per request, {os.cpu_count()} CPUs")
    print(f"{'path':<24}{'clients':>8}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for r in results:
        print(
            f"{r['path']:<24}{r['clients']:>8}{r['requests']:>10}{r['requests_per_s']:>10.0f}"
            f"{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
        )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(
            {"model": name, "version": version, "batch": args.batch, "cpus": os.cpu_count(), "results": results},
            f,
            indent=1,
        )
    print("saved", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
