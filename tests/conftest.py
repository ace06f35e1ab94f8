"""Shared fixtures: the project paths and a small, real sample of the bundled data."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as pipeline/__init__.py explains

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


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """The first 3,000 bundled examples, as the pipeline would get them from a user."""
    out = tmp_path_factory.mktemp("small_data")
    write_examples(read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=3000), out / "part-0.tfrecord.gz")
    return out


ALL_NODES = ["ImportExampleGen", "ImportSchemaGen", "BaselineModel", "StatisticsGen",
             "ExampleValidator", "ValidationGate", "Transform", "Trainer", "Evaluator", "InfraValidator", "EdgeExport",
             "Pusher",
             "SliceReport"]
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
    args = [sys.executable, str(PROJECT_DIR / "local_runner.py"), "--config", str(taxi_config(workdir)),
            "--set", f"input_base={data_dir}",
            "--set", f"pipeline_root={workdir}/root", "--set", f"metadata_path={workdir}/metadata.sqlite",
            "--set", f"serving_dir={workdir}/serving",
            "--set", "train_steps=150", "--set", "eval_steps=10", "--set", "cpu_replicas=2",
            "--set", "thresholds={auc = {min = 0.55}, binary_accuracy = {min = 0.55}}",
            "--set", "max_drop={auc = 0.2}"]
    for o in overrides:
        args += ["--set", o]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=PROJECT_DIR, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {m.group(1): m.group(2) for m in LINE.finditer(proc.stdout)}, proc.stdout


@pytest.fixture(scope="session")
def first_run(tmp_path_factory, small_data_dir):
    """One cold run of the whole DAG; the e2e, report and notebook tests read its outputs.

    Its result is read from ML Metadata right away: later tests run the pipeline again
    on the same root, and "latest" would then mean their run.
    """
    from pipeline.run_outputs import read_run_result

    workdir = tmp_path_factory.mktemp("e2e")
    states, stdout = run_pipeline(workdir, small_data_dir)
    result = read_run_result(str(workdir / "metadata.sqlite"), "taxi-tips")
    return workdir, small_data_dir, states, stdout, result
