"""`python -m reporting`: write the slice report of the latest run (or of a given evaluation)."""

from __future__ import annotations

import argparse
import logging
import sys

from reporting.model import load_report
from reporting.render import write_reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evaluation", help="an Evaluator output directory (default: the latest run's)")
    parser.add_argument("--statistics", help="a StatisticsGen output directory")
    parser.add_argument("--anomalies", help="an ExampleValidator output directory")
    parser.add_argument("--config", help="TOML config naming metadata_path and pipeline_name")
    parser.add_argument("--out", default="build/report", help="directory for report.html and report.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    evaluation, statistics, anomalies = args.evaluation, args.statistics, args.anomalies
    if not evaluation:
        from pipeline.config import load_config
        from pipeline.run_outputs import latest_outputs, open_store

        cfg = load_config(args.config)
        store = open_store(cfg.path("metadata_path"))
        outs = {
            node: latest_outputs(store, cfg.pipeline_name, node)
            for node in ("Evaluator", "StatisticsGen", "ExampleValidator")
        }
        if not outs["Evaluator"].get("evaluation"):
            print(f"no evaluation found in {cfg.path('metadata_path')}: run the pipeline first", file=sys.stderr)
            return 1
        evaluation = outs["Evaluator"]["evaluation"][0].uri
        statistics = statistics or (outs["StatisticsGen"].get("statistics") or [None])[0]
        statistics = getattr(statistics, "uri", statistics)
        anomalies = anomalies or (outs["ExampleValidator"].get("anomalies") or [None])[0]
        anomalies = getattr(anomalies, "uri", anomalies)
    report = load_report(evaluation, statistics, anomalies)
    try:
        html_path, md_path = write_reports(report, args.out)
    except OSError as e:
        from pipeline.output_faults import describe_report_fault

        print(f"output error: {describe_report_fault(e, args.out) or e}", file=sys.stderr)
        return 1
    print(html_path)
    print(md_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
