"""ImportExampleGen alone: TFX's own executor against the project's, on the same rows.

    python -m benchmarks.example_gen_alone [--size 1.5M]

The one change that `make bench` cannot show by itself: the whole-DAG runs mix it with
every other change. Each executor runs in its own process (sampled for peak memory as
`make bench` samples its contenders, benchmarks/procmon.py) with the Beam arguments our DAG
gives ImportExampleGen on this machine (pipeline/beam.py), the same split, and gzip output.
Both write the same records into the same splits (tests/test_example_gen.py checks that);
TFX's executor also reshuffles each split globally, ours streams.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import shutil
import sys
from pathlib import Path

from benchmarks import datagen
from benchmarks.procmon import run_measured

LOG = logging.getLogger("benchmarks")
PROJECT_DIR = Path(__file__).resolve().parent.parent
EXECUTORS = {
    "tfx": "tfx.components.example_gen.import_example_gen.executor",
    "ours": "components.example_gen",
}


def _config(input_base: str):
    """The default configuration, reading `input_base`: the DAG's split and Beam plan."""
    from pipeline.config import PipelineConfig

    return dataclasses.replace(PipelineConfig(), input_base=input_base)


def run_one(which: str, input_base: str, out_dir: str) -> None:
    """One executor's Do(), with the arguments the DAG gives ImportExampleGen (the child
    process of main)."""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts, standard_component_specs
    from tfx.utils import proto_utils

    from pipeline import beam
    from pipeline.dag import example_gen_input_config, example_gen_output_config

    cfg = _config(input_base)
    pipeline_args, per_node = beam.plan(cfg)
    args = pipeline_args + beam.local_node_args(cfg, per_node).get("ImportExampleGen", [])
    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: input_base,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(example_gen_input_config(cfg)),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(example_gen_output_config(cfg)),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor = importlib.import_module(EXECUTORS[which]).Executor
    print(f"beam args: {' '.join(args)}", flush=True)
    executor(executor.Context(beam_pipeline_args=args)).Do(
        {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1.5M", help="rows, as make bench names them (default 1.5M)")
    parser.add_argument("--out", default=str(PROJECT_DIR / "build" / "bench" / "example_gen"))
    parser.add_argument("--one", choices=sorted(EXECUTORS), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.input, args.out)
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    data = datagen.ensure(datagen.parse_size(args.size))
    from pipeline.beam import input_bytes

    input_mb = input_bytes(_config(str(data.tfrecord_dir))) / 2**20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for which in EXECUTORS:
        work = out / which
        shutil.rmtree(work, ignore_errors=True)
        cmd = [sys.executable, "-m", "benchmarks.example_gen_alone", "--one", which]
        cmd += ["--input", str(data.tfrecord_dir), "--out", str(work)]
        LOG.info("%s executor, %s rows ...", which, f"{data.rows:,}")
        usage, _ = run_measured(cmd, log_path=str(out / f"{which}.log"), cwd=str(PROJECT_DIR))
        if usage.returncode != 0:
            LOG.error("%s executor failed (exit %s): see %s", which, usage.returncode, out / f"{which}.log")
            return 1
        written = sum(f.stat().st_size for f in work.rglob("*") if f.is_file())
        results[which] = {
            "wall_s": round(usage.wall_s, 1),
            "peak_pss_mb": round(usage.peak_pss_mb),
            "peak_rss_mb": round(usage.peak_rss_mb),
            "output_mb": round(written / 2**20, 3),
        }
        LOG.info("%s: %s", which, results[which])
        shutil.rmtree(work, ignore_errors=True)
    (out / "results.json").write_text(json.dumps({"rows": data.rows, "input_mb": input_mb, **results}, indent=1))
    print(f"\nImportExampleGen alone, {data.rows:,} rows ({input_mb:.0f} MB gzip TFRecords):")
    print("| executor | wall s | peak PSS MB | peak RSS MB | output MB |\n|---|---:|---:|---:|---:|")
    for which, r in results.items():
        print(f"| {which} | {r['wall_s']} | {r['peak_pss_mb']:,} | {r['peak_rss_mb']:,} | {r['output_mb']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
