"""The bundled taxi data as the tests use it: paths, a sample reader and writer, the taxi
configuration for runs whose input lives elsewhere, and one way to run the whole DAG."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = PROJECT_DIR / "data" / "taxi"
SCHEMA_PATH = PROJECT_DIR / "schemas" / "taxi_schema.pbtxt"


def read_examples(pattern: str, limit: int | None = None) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(pattern))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if limit:
        ds = ds.take(limit)
    return [r.numpy() for r in ds]


def write_examples(records: list[bytes], path: str | os.PathLike) -> None:
    import tensorflow as tf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for r in records:
            w.write(r)


ALL_NODES = [
    "ImportExampleGen",
    "ImportSchemaGen",
    "BaselineModel",
    "StatisticsGen",
    "ExampleValidator",
    "ValidationGate",
    "Transform",
    "Trainer",
    "Evaluator",
    "InfraValidator",
    "EdgeExport",
    "Pusher",
    "SliceReport",
]
LINE = re.compile(r"^\[\s*\d+/\d+\] (\S+)\s+(done|cached|FAILED)\s+([\d.]+) s$", re.M)


def taxi_config(workdir) -> Path:
    """configs/local.toml with its [dataset] table applied: the taxi settings kept while
    input_base points at a sample of the taxi data elsewhere."""
    from pipeline.config import with_dataset_applied

    return with_dataset_applied(PROJECT_DIR / "configs" / "local.toml", workdir)


# The taxi configuration for tests that load one in-process and override its paths.
TAXI_TOML = taxi_config(tempfile.mkdtemp(prefix="taxi-config-"))
os.chmod(TAXI_TOML.parent, 0o755)  # readable by the tests that run as user nobody


def run_pipeline(workdir, data_dir, *overrides: str) -> tuple[dict[str, str], str]:
    args = [
        sys.executable,
        str(PROJECT_DIR / "local_runner.py"),
        "--config",
        str(taxi_config(workdir)),
        "--set",
        f"input_base={data_dir}",
        "--set",
        f"pipeline_root={workdir}/root",
        "--set",
        f"metadata_path={workdir}/metadata.sqlite",
        "--set",
        f"serving_dir={workdir}/serving",
        "--set",
        "train_steps=150",
        "--set",
        "eval_steps=10",
        "--set",
        "cpu_replicas=2",
        "--set",
        "thresholds={auc = {min = 0.55}, binary_accuracy = {min = 0.55}}",
        "--set",
        "max_drop={auc = 0.2}",
    ]
    for o in overrides:
        args += ["--set", o]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=PROJECT_DIR, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {m.group(1): m.group(2) for m in LINE.finditer(proc.stdout)}, proc.stdout
