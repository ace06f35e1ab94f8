"""Convert TFX's bundled Chicago taxi CSV sample into gzip TFRecords of tf.train.Example.

Why a converter and not CsvExampleGen: the product reads TFRecords (what real feature
pipelines hand over), and CSV loses types and missing-ness. Here every column gets its
declared type, and an empty CSV cell becomes an *absent* feature, never "" or 0.

Deterministic: the same CSV gives byte-identical files (fixed row order, fixed sharding, map entries serialized in key order,
gzip written by TensorFlow without timestamps). Run inside the runtime:

    bin/runtime run python data/make_tfrecords.py [--csv PATH] [--out data/taxi]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from pathlib import Path

import tensorflow as tf

LOG = logging.getLogger("make_tfrecords")

INT_COLUMNS = (
    "pickup_community_area",
    "dropoff_community_area",
    "trip_start_month",
    "trip_start_hour",
    "trip_start_day",
    "trip_start_timestamp",
    "pickup_census_tract",
    "dropoff_census_tract",
    "trip_seconds",
)
FLOAT_COLUMNS = (
    "fare",
    "tips",
    "trip_miles",
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)
STRING_COLUMNS = ("payment_type", "company")
NUM_SHARDS = 2


def default_csv() -> Path:
    import tfx

    return Path(tfx.__file__).parent / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"


def row_to_example(row: dict[str, str]) -> tf.train.Example:
    features = {}
    for name, value in row.items():
        if value == "":
            continue  # missing stays missing
        if name in INT_COLUMNS:
            # Some integer columns are written as "5.0" in the source CSV.
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
        elif name in FLOAT_COLUMNS:
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        elif name in STRING_COLUMNS:
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        else:
            raise ValueError(f"column {name!r} has no declared type")
    return tf.train.Example(features=tf.train.Features(feature=features))


def convert(csv_path: Path, out_dir: Path, num_shards: int = NUM_SHARDS) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_paths = [out_dir / f".data-{i:05d}-of-{num_shards:05d}.tfrecord.gz.tmp" for i in range(num_shards)]
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = [tf.io.TFRecordWriter(str(p), options) for p in tmp_paths]
    count = 0
    with open(csv_path, newline="") as f:
        for count, row in enumerate(csv.DictReader(f), start=1):
            writers[(count - 1) % num_shards].write(row_to_example(row).SerializeToString(deterministic=True))
    for w in writers:
        w.close()
    for p in tmp_paths:  # publish only complete files
        os.replace(p, p.with_name(p.name[1:].removesuffix(".tmp")))
    return count


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, default=None, help="source CSV (default: the one in the tfx wheel)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "taxi")
    args = parser.parse_args()
    n = convert(args.csv or default_csv(), args.out)
    LOG.info("wrote %d examples to %s", n, args.out)


if __name__ == "__main__":
    main()
