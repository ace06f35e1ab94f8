"""Run the pipeline locally on Apache Beam: `python local_runner.py [--config F] [--set K=V ...]`.

Thin on purpose: configuration, the DAG and the summary all live in `pipeline/`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from pipeline.config import ConfigError, load_config, parse_overrides

LOG = logging.getLogger("pipeline.local")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the taxi TFX pipeline locally on Beam.")
    parser.add_argument("--config", help="TOML file with settings (see configs/local.toml)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train_steps=200 (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show all TFX/Beam logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, parse_overrides(args.set))
    except (ConfigError, ValueError) as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2

    from pipeline.output_faults import OutputError, check_outputs, describe, log_dir

    try:  # before anything is written: the log file is the first output
        check_outputs(cfg)
    except OutputError as e:
        print(f"output error: {e}", file=sys.stderr)
        return 2
    from pipeline.preflight import InputError, RunLock, RunLocked, check_inputs
    from pipeline.progress import ComponentProgress, configure_logging

    log_file = os.path.join(log_dir(cfg), time.strftime("run-%Y%m%d-%H%M%S.log"))
    log_handler = configure_logging(log_file, args.verbose)
    if not args.verbose:  # TensorFlow's and Beam's native code write straight to fd 2
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
        with open(log_file, "a") as f:
            os.dup2(f.fileno(), 2)
    from metrics import gates
    from modeling import devices
    from pipeline.plan import plan_of

    devices.split_cpu(cfg.cpu_replicas)  # before anything initialises TensorFlow
    for note in cfg.notes:
        LOG.info("note: %s", note)
    plan = plan_of(cfg)
    for note in plan.notes:
        LOG.info("%s", note)
    LOG.info("gates: %s", gates.describe(plan.task, *gates.gates_for(plan.task, cfg.thresholds, cfg.max_drop)))

    try:
        counts = check_inputs(cfg)
    except InputError as e:
        LOG.error("input error: %s", e)
        return 2
    except OSError as e:  # the input-check memo beside the pipeline root
        LOG.error("output error: %s", describe(e, cfg) or e)
        return 2
    LOG.info("input: %s", ", ".join(f"{n} records ({split})" for split, n in counts.items()) or "remote")

    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    from pipeline.concurrent_runner import ConcurrentDagRunner
    from pipeline.dag import create_pipeline
    from pipeline.run_outputs import read_run_result

    pipeline = create_pipeline(cfg, sqlite_metadata_connection_config(cfg.path("metadata_path")))
    node_ids = [c.id for c in pipeline.components]
    progress = ComponentProgress(node_ids)
    logging.getLogger().addHandler(progress)
    LOG.info(
        "pipeline %s: %d components, input %s, full log %s",
        cfg.pipeline_name,
        len(node_ids),
        cfg.path("input_base"),
        log_file,
    )
    start = time.monotonic()
    try:
        lock = RunLock(cfg)
        lock.acquire()
    except RunLocked as e:
        LOG.error("refused: %s", e)
        return 3
    except OSError as e:
        LOG.error("output error: %s", describe(e, cfg) or e)
        return 2
    try:
        ConcurrentDagRunner(cfg.parallel_nodes).run(pipeline)
    except Exception as e:  # one clear line; the traceback is in the log file
        failed = progress.failed()
        logging.getLogger("traceback").error("run failed", exc_info=True)  # log file only
        fault = describe(e, cfg)
        LOG.error("run failed in %s: %s", failed or "the pipeline", fault or f"{type(e).__name__}: {e}")
        LOG.error("full log: %s", log_file)
        return 1
    finally:
        logging.getLogger().removeHandler(progress)
        lock.release()
    if log_handler.error is not None:  # the run went on; its log did not
        LOG.error("run finished but its log is incomplete: %s", describe(log_handler.error, cfg))
        return 1

    result = read_run_result(cfg.path("metadata_path"), cfg.pipeline_name)
    LOG.info("finished in %.1f s", time.monotonic() - start)
    print_summary(result)
    return 0


def print_summary(result) -> None:
    from metrics.results import HEADLINE

    if result.span is not None:
        LOG.info(
            "span %s; trained on spans %s",
            result.span,
            ", ".join(f"{s} ({n} records)" for s, n in result.window.items()),
        )
    if result.warm_start is not None:
        w = result.warm_start
        LOG.info("%s %s (%d steps)", "WARM START" if w["warm_started"] else "cold start:", w["detail"], w["steps"])
    if result.drift:
        drifted = [r for r in result.drift if r["drifted"]]
        LOG.info(
            "drift: %s",
            "; ".join(f"{r['feature']} {r['value']:.3f} > {r['threshold']:g}" for r in drifted)
            if drifted
            else f"none over {len(result.drift)} features",
        )
    if result.blessed:
        LOG.info("model BLESSED")
    else:
        LOG.info("model NOT blessed: %s", "; ".join(result.failures) or "no evaluation")
    if result.gates:
        LOG.info("  gates (%s): %s", result.task, result.gates)
    for name in HEADLINE.get(result.task or "", ()):
        if name in result.overall:
            fmt = "{:.0f}" if name == "example_count" else "{:.4f}"
            value, base = result.overall[name], result.baseline_overall.get(name)
            delta = f"  (baseline {fmt.format(base)}, {value - base:+.4f})" if base is not None else ""
            LOG.info("  %-24s %s%s", name, fmt.format(value), delta)
    if result.infra_blessed is not None:
        LOG.info(
            "model %s",
            "INFRA-BLESSED: loaded by a model server and answered TF Serving requests"
            if result.infra_blessed
            else "NOT infra-blessed: the model server could not load it or it failed TF Serving requests (see the log)",
        )
    if result.edge_report:
        from components.edge_export import describe as describe_edge

        for line in describe_edge(result.edge_report):
            LOG.info("%s", line)
    if result.pushed_to:
        LOG.info("pushed to %s", result.pushed_to)
    else:
        LOG.info("nothing pushed")
    if result.report_dir:
        LOG.info("report: %s", os.path.join(result.report_dir, "report.html"))
        LOG.info("        %s", os.path.join(result.report_dir, "report.md"))


if __name__ == "__main__":
    sys.exit(main())
