"""A week of continuous training on the bundled data: `python -m pipeline.days` (`make days`).

Deals the bundled records into N daily spans (`DIR/data/YYYY-MM-DD/`, one of them drifted
on purpose: trips 12 hours later, all paid in cash), then, day by day, writes that day's span and
runs the pipeline as a scheduler would: the run reads the newest span, trains on the last
`window_spans` spans, warm-starts from the last blessed model and stops on drift. One line
per day: span, rows, warm start, drift verdict, AUC, pushed or not.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time

from pipeline.config import PROJECT_DIR, ConfigError, load_config, parse_overrides, with_dataset_applied

PATTERN = "{YYYY}-{MM}-{DD}/*.tfrecord.gz"
# What a daily run sets over configs/local.toml (the command line's --set wins).
DAY_SETTINGS = {
    "input_pattern": PATTERN,
    "window_spans": "3",
    "warm_start": "true",
    "train_steps": "300",
    "warm_start_steps": "100",
    "eval_steps": "20",
    "drift_l_infinity": "0.1",
    # TFDV's Jensen-Shannon divergence re-bins equal-width histograms: for a heavy-tailed
    # feature a few long trips move it (between two clean days of the bundled data:
    # trip_miles 0.78 at 1,000 rows a day, trip_seconds 0.15 at 2,143); for bounded ones it
    # is steady (trip_start_hour, trip_start_day <= 0.003 there).
    "drift_thresholds": "{trip_start_hour = 0.05, trip_start_day = 0.05}",
}
_FAILED = re.compile(r"^run failed in (\S+): (.*)$", re.M)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Daily spans from the bundled data, run day by day.")
    p.add_argument("--days", type=int, default=7, help="how many daily spans (default 7)")
    p.add_argument("--drifted", type=int, default=0, help="which day (1..N) drifts; default the last, 0 after --days")
    p.add_argument("--rows", type=int, default=0, help="records per day (default: the bundled data shared out)")
    p.add_argument("--start", default="2026-11-01", help="the first day's date (YYYY-MM-DD)")
    p.add_argument("--out", default="build/days", help="where the spans, pipeline root and serving directory go")
    p.add_argument("--config", default=str(PROJECT_DIR / "configs" / "local.toml"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every day's run")
    return p.parse_args(argv)


def day_records(days: int, rows: int, drifted: int) -> list[list[bytes]]:
    """The bundled records dealt round robin into `days` lists (alike by construction);
    day `drifted` (1-based) has its trips start 12 hours later and every fare paid in cash."""
    from tensorflow.core.example import example_pb2

    from components.example_gen import files_for, read_records

    records = [r for path in files_for(str(PROJECT_DIR / "data" / "taxi"), "*.tfrecord.gz") for r in read_records(path)]
    per_day = [records[d::days][: rows or None] for d in range(days)]
    if drifted:
        changed = []
        for raw in per_day[drifted - 1]:
            example = example_pb2.Example.FromString(raw)
            feature = example.features.feature
            hour = feature["trip_start_hour"].int64_list.value
            if hour:
                hour[0] = (hour[0] + 12) % 24
            feature["payment_type"].bytes_list.value[:] = [b"Cash"]
            changed.append(example.SerializeToString())
        per_day[drifted - 1] = changed
    return per_day


def write_span(records: list[bytes], path: str) -> None:
    import tensorflow as tf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path + ".tmp", tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for r in records:
            w.write(r)
    os.replace(path + ".tmp", path)


def run_day(config_file: str, out: str, overrides: list[str]) -> tuple[int, str]:
    args = [
        sys.executable,
        str(PROJECT_DIR / "local_runner.py"),
        "--config",
        config_file,
        "--set",
        f"input_base={out}/data",
        "--set",
        f"pipeline_root={out}/root",
        "--set",
        f"metadata_path={out}/metadata.sqlite",
        "--set",
        f"serving_dir={out}/serving",
    ]
    for o in overrides:
        args += ["--set", o]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(args, capture_output=True, text=True, cwd=PROJECT_DIR, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def day_line(day: str, span: int, rows: int, code: int, output: str, cfg) -> str:
    """The day's line, from ML Metadata when the run finished, from its error line when not."""
    if code != 0:
        m = _FAILED.search(output)
        where, why = (m.group(1), m.group(2)) if m else ("the pipeline", output.strip().splitlines()[-1:])
        verdict = f"DRIFT: {why.split(': ', 1)[-1]}" if where == "DriftCheck" else f"stopped in {where}: {why}"
        return f"{day}  span {span}  rows {rows:>5}  {verdict}  -> not pushed"
    from pipeline.run_outputs import read_run_result

    r = read_run_result(cfg.path("metadata_path"), cfg.pipeline_name)
    warm = r.warm_start or {}
    start = "warm" if warm.get("warm_started") else "cold"
    drifted = [d for d in (r.drift or []) if d["drifted"]]
    drift = (
        "no previous span"
        if not r.drift
        else (
            f"drift (warned): {', '.join(d['feature'] for d in drifted)}"
            if drifted
            else f"no drift (max {max(d['value'] for d in r.drift):.3f})"
        )
    )
    auc = r.overall.get("auc")
    return (
        f"{day}  span {span}  rows {rows:>5}  window {'+'.join(r.window) or '-'}  {start} start "
        f"({warm.get('steps', '?')} steps)  {drift}  AUC {auc:.4f}  "
        f"-> {'pushed' if r.pushed_to else 'not pushed'}"
        + ("" if start == "warm" or not warm else f"  [{warm.get('detail')}]")
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # This process reads and writes records only: TensorFlow's start-up lines are noise here
    # (each day's run keeps its own logging; run_day does not pass this on).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = os.path.abspath(args.out)
    drifted = args.days if args.drifted == 0 else args.drifted
    os.makedirs(out, exist_ok=True)
    config_file = str(with_dataset_applied(args.config, out))
    overrides = [f"{k}={v}" for k, v in DAY_SETTINGS.items()] + args.set
    try:
        cfg = load_config(
            config_file,
            {**parse_overrides(overrides), "input_base": f"{out}/data", "metadata_path": f"{out}/metadata.sqlite"},
            check_files=False,
        )
        start = datetime.date.fromisoformat(args.start)
    except (ConfigError, ValueError) as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if not 1 <= drifted <= args.days:
        print(f"config error: --drifted: a day in 1..{args.days}, got {args.drifted}", file=sys.stderr)
        return 2
    import logging

    from tfx.components.example_gen import utils

    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    began = time.monotonic()
    print(
        f"{args.days} daily spans in {out}/data (day {drifted} drifted); window {cfg.window_spans} spans, "
        f"warm start {'on' if cfg.warm_start else 'off'}, drift {'stops' if cfg.fail_on_drift else 'warns'}",
        flush=True,
    )
    failures = 0
    for d, records in enumerate(day_records(args.days, args.rows, drifted)):
        day = start + datetime.timedelta(days=d)
        write_span(records, f"{out}/data/{day.isoformat()}/part-0.tfrecord.gz")
        span = utils.date_to_span_number(day.year, day.month, day.day)
        code, output = run_day(config_file, out, overrides)
        with open(f"{out}/day-{day.isoformat()}.log", "w") as f:
            f.write(output)
        print(day_line(day.isoformat(), span, len(records), code, output, cfg), flush=True)
        failures += code != 0 and (d + 1) != drifted
    print(f"{args.days} days in {time.monotonic() - began:.0f} s; logs in {out}/day-*.log", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
