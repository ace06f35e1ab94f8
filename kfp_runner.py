"""Kubeflow Pipelines v2: compile the DAG, prove the spec runs, submit or schedule runs.

    python kfp_runner.py compile   [--config F] [--set K=V] [--output build/pipeline.json]
    python kfp_runner.py run-local [--spec build/pipeline.json] [--param K=V]
                                   --pipeline-root DIR --local-storage [--no-publish-logs]
    python kfp_runner.py submit    --endpoint URL [--experiment E] [--param K=V]
    python kfp_runner.py schedule  --endpoint URL --cron "0 0 3 * * *" [--max-concurrency 1]

Thin on purpose: the DAG is `pipeline.dag.create_pipeline`, the settings the one
`PipelineConfig`; compiling lives in pipeline/kubeflow.py, the local run of a compiled spec
in pipeline/kfp_local.py, talking to a KFP endpoint in pipeline/kfp_client.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from pipeline.config import ConfigError, load_config, parse_overrides

LOG = logging.getLogger("pipeline.kfp")
DEFAULT_SPEC = "build/pipeline.json"


def _params(pairs: list[str], train_steps: int | None) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        params[key.strip()] = value
    if train_steps is not None:
        params["train_args"] = json.dumps({"num_steps": train_steps})  # TrainArgs as JSON
    return params


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    comp = sub.add_parser("compile", help="write the KFP v2 pipeline spec (offline, seconds)")
    comp.add_argument("--config", help="TOML file with settings (see configs/kubeflow.toml)")
    comp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    comp.add_argument("--output", default=DEFAULT_SPEC, help="spec file to write")

    for name, help_text in (
        ("run-local", "run a compiled spec here, task by task, as KFP would"),
        ("submit", "create one run on a KFP endpoint"),
        ("schedule", "create a recurring run on a KFP endpoint"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--spec", default=DEFAULT_SPEC, help="compiled spec (from `compile`)")
        p.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="run parameter: input_base, train_args, span (with a span pattern; -1: the newest) (repeatable)",
        )
        p.add_argument("--train-steps", type=int, help="shorthand for --param train_args=...")
        if name == "run-local":
            p.add_argument("--pipeline-root", help="instead of the spec's pipeline root")
            p.add_argument(
                "--local-storage",
                action="store_true",
                help="accept a local directory as the pipeline root (a local proof; "
                "KFP's launcher accepts only gs://, s3://, minio://)",
            )
            p.add_argument(
                "--no-publish-logs",
                dest="publish_logs",
                action="store_false",
                help="as a cluster with log publishing off (no executor-logs output)",
            )
            p.add_argument(
                "--image-workdir",
                default=os.path.dirname(os.path.abspath(__file__)),
                help="stands in for the image's WORKDIR (default: this checkout)",
            )
            continue
        p.add_argument(
            "--endpoint", default=os.environ.get("KFP_ENDPOINT"), help="KFP API URL (default: $KFP_ENDPOINT)"
        )
        p.add_argument(
            "--namespace",
            default=os.environ.get("KFP_NAMESPACE"),
            help="Kubeflow profile namespace (default: $KFP_NAMESPACE)",
        )
        p.add_argument("--experiment", default="taxi-tips", help="experiment to file runs under")
        p.add_argument("--pipeline-name", help="name in KFP (default: the spec's)")
        p.add_argument("--run-name", help="default: pipeline name + timestamp")
        if name == "schedule":
            p.add_argument(
                "--cron", required=True, help='six-field cron with seconds, e.g. "0 0 3 * * *" (daily 03:00)'
            )
            p.add_argument("--max-concurrency", type=int, default=1)
            p.add_argument("--catchup", action="store_true", help="backfill missed intervals (off by default)")
    return parser.parse_args(argv)


def _compile(args) -> int:
    try:
        cfg = load_config(args.config, parse_overrides(args.set))
    except (ConfigError, ValueError) as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    from pipeline.kubeflow import compile_pipeline

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    job = compile_pipeline(cfg, args.output)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    LOG.info("wrote %s: %d tasks, image %s", args.output, len(tasks), cfg.image)
    return 0


def _run_local(args, params) -> int:
    from pipeline.kfp_local import TaskFailed, run_compiled, second_run_cache_hits
    from pipeline.kubeflow import load_job

    def progress(i, n, task, seconds, state):
        if seconds is None:
            LOG.info("[%d/%d] %s ...", i, n, task)
        elif state == "cached":
            LOG.info("[%d/%d] %s served from KFP's cache (an earlier run's outputs)", i, n, task)
        else:
            LOG.info("[%d/%d] %s done in %.1f s", i, n, task, seconds)

    try:
        run = run_compiled(
            args.spec,
            params,
            pipeline_root=args.pipeline_root,
            local_storage=args.local_storage,
            publish_logs=args.publish_logs,
            image_workdir=args.image_workdir,
            on_progress=progress,
        )
    except TaskFailed as e:
        LOG.error("%s", e)
        return 1
    baseline = run.outputs.get("BaselineModel", {}).get("model")
    if baseline is not None and baseline.metadata["baseline_found"]:
        LOG.info("baseline: %s", baseline.metadata["source"])
    elif baseline is not None:
        LOG.info("baseline: none (nothing pushed yet)")
    pushed = run.outputs.get("Pusher", {}).get("pushed_model")
    meta = dict(pushed.metadata) if pushed is not None else {}
    if meta.get("pushed"):
        LOG.info("run %s complete: model pushed to %s", run.run_id, meta.get("pushed_destination"))
    else:
        LOG.info("run %s complete: model NOT pushed (not blessed)", run.run_id)
    hits = second_run_cache_hits(load_job(args.spec)[1])
    LOG.info("run again with the same parameters, a cluster serves from its cache: %s", ", ".join(hits) or "nothing")
    return 0


def _remote(args, params) -> int:
    from pipeline.kfp_client import EndpointError, KfpEndpoint, check_cron
    from pipeline.kubeflow import pipeline_root, pipeline_spec_document

    if not args.endpoint:
        print("error: no KFP endpoint: pass --endpoint or set KFP_ENDPOINT", file=sys.stderr)
        return 2
    pipeline_spec_document(args.spec)  # fail on a missing spec before talking to anyone
    pipeline_root(args.spec)  # ... or on a root the launcher would refuse
    if args.command == "schedule":
        check_cron(args.cron)
    try:
        endpoint = KfpEndpoint(args.endpoint, namespace=args.namespace)
        if args.command == "submit":
            result = endpoint.submit(
                args.spec,
                experiment=args.experiment,
                params=params,
                pipeline_name=args.pipeline_name,
                run_name=args.run_name,
            )
        else:
            result = endpoint.schedule(
                args.spec,
                experiment=args.experiment,
                params=params,
                cron=args.cron,
                max_concurrency=args.max_concurrency,
                catchup=args.catchup,
                pipeline_name=args.pipeline_name,
                run_name=args.run_name,
            )
    except EndpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    LOG.info("%s", result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("absl", "tensorflow", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from pipeline.kubeflow import SpecError

    if args.command == "compile":
        try:
            return _compile(args)
        except SpecError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    try:
        from pipeline.kubeflow import typed_parameters

        params = typed_parameters(args.spec, _params(args.param, args.train_steps))
        if args.command == "run-local":
            return _run_local(args, params)
        return _remote(args, params)
    except (SpecError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
