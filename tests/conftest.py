"""Shared fixtures: the project paths and a small, real sample of the bundled data."""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

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
