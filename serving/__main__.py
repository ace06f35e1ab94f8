"""`python -m serving`: serve the pushed model like TF Serving, list versions, roll back.

    python -m serving serve    [--config F] [--set K=V] [--rest-port N] [--grpc-port N] [--host H]
    python -m serving versions [--config F] [--set K=V]
    python -m serving rollback [--config F] [--set K=V] [--to VERSION]

`serve` watches <serving_dir>/<model_name> (or --model-base-path) by TF Serving's version
rules and answers its REST and gRPC APIs. Like TF Serving, it opens its ports only once a
version is loaded (and exits if the first version fails to load); InfraValidator's
loopback runner starts it with --grpc-port 0 --port-file F to learn the port it got.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

LOG = logging.getLogger("serving")


def _config(args):
    from pipeline.config import load_config, parse_overrides

    return load_config(args.config, parse_overrides(args.set), check_files=False)


def _model_base(args) -> tuple[str, str, object]:
    if getattr(args, "model_base_path", None):
        return args.model_name, os.path.abspath(args.model_base_path), None
    cfg = _config(args)
    return cfg.model_name, os.path.join(cfg.path("serving_dir"), cfg.model_name), cfg


def cmd_serve(args) -> int:
    from serving.repository import ModelRepository

    name, base, cfg = _model_base(args)
    rest_port = args.rest_port if args.rest_port is not None else (cfg.serving_rest_port if cfg else -1)
    grpc_port = args.grpc_port if args.grpc_port is not None else (cfg.serving_grpc_port if cfg else -1)
    repository = ModelRepository(
        name, base, poll_seconds=args.poll_seconds, method_name_check=args.enable_signature_method_name_check
    )
    if grpc_port < 0 and rest_port < 0:
        LOG.error("nothing to serve: both --rest-port and --grpc-port are disabled")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from serving.model import ServingError

    try:  # like TF Serving, the ports open only once the model is loaded
        repository.load_first(stop)
    except ServingError as e:
        LOG.error("not serving: %s", e.message)
        return 1
    if stop.is_set():
        return 0
    ports = {}
    if grpc_port >= 0:
        from serving.grpc_server import start_grpc_server

        grpc_server, ports["grpc"] = start_grpc_server(repository, args.host, grpc_port)
    if rest_port >= 0:
        from serving.rest import start_rest_server

        rest_server, ports["rest"] = start_rest_server(repository, args.host, rest_port, args.enable_cors_support)
    if args.port_file:  # written whole (rename), so a reader never sees half a file
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(" ".join(f"{k}={v}" for k, v in ports.items()) + "\n")
        os.rename(tmp, args.port_file)
    LOG.info("serving model %s from %s (%s)", name, base, ", ".join(f"{k} port {v}" for k, v in ports.items()))
    if "rest" in ports:
        LOG.info("try: curl http://localhost:%d/v1/models/%s", ports["rest"], name)
    repository.start()
    stop.wait()
    LOG.info("stopping")
    repository.stop()
    if "grpc" in ports:
        grpc_server.stop(grace=0.5)
    if "rest" in ports:
        rest_server.shutdown()
    # Nothing is left to write; TensorFlow's own teardown at interpreter exit takes 10-20 s
    # here, which SIGTERM callers (InfraValidator, tests, Ctrl-C) would wait for.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


def cmd_versions(args) -> int:
    from serving.layout import retracted, versions

    _, base, _ = _model_base(args)
    found, withdrawn = versions(base), retracted(base)
    if not found:
        print(f"no versions under {base}")
        return 1
    for v in found:
        notes = (["served (highest)"] if v == found[-1] else []) + (["withdrawn by rollback"] if v in withdrawn else [])
        print(f"{v}  {os.path.join(base, str(v))}  {', '.join(notes)}".rstrip())
    return 0


def cmd_rollback(args) -> int:
    from serving.layout import RollbackError, rollback

    _, base, cfg = _model_base(args)
    try:
        withdrawn, source, new = rollback(base, args.to, keep=cfg.keep_versions if cfg else 5)
    except RollbackError as e:
        print(f"rollback refused: {e}", file=sys.stderr)
        return 1
    print(
        f"rolled back: version {withdrawn} withdrawn; version {source} re-published as {new} "
        f"({os.path.join(base, str(new))}); a running server switches to it on its next poll"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "serve the latest version with TF Serving's REST and gRPC APIs"),
        ("versions", "list the versions in the serving directory"),
        ("rollback", "re-publish the previous version as the new highest one"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML file with settings (default: the built-in defaults)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--model-name", default="model", help="with --model-base-path: the model's name")
        p.add_argument("--model-base-path", help="serve this directory instead of <serving_dir>/<model_name>")
    serve = sub.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--rest-port", type=int, help="REST port (default: serving_rest_port; -1: off)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default: serving_grpc_port; -1: off)")
    serve.add_argument("--port-file", help="write the bound ports here once listening")
    serve.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new versions")
    serve.add_argument(
        "--enable-cors-support", action="store_true", help="like TF Serving's flag: CORS headers on every REST answer"
    )
    serve.add_argument(
        "--enable-signature-method-name-check",
        action="store_true",
        help="like TF Serving's flag: Classify/Regress/Predict need the matching method_name",
    )
    sub.choices["rollback"].add_argument("--to", type=int, help="re-publish this version (default: the previous one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return {"serve": cmd_serve, "versions": cmd_versions, "rollback": cmd_rollback}[args.command](args)
    except ValueError as e:  # ConfigError included
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
