"""Larger taxi data for the benchmark: the bundled sample replicated with seeded jitter.

Why not just copy the files N times: identical records would hash into the same split
and compress unrealistically well, and statistics would see exact duplicates only.
Replica 0 is the bundled sample itself; every further replica scales each trip's fare
and tips by one random factor (so the label, tips > 20% of fare, is kept up to rounding),
its distance by another, and moves its coordinates by up to ~100 m. Categorical and
integer features are unchanged, so the schema and its domains still hold.

The same rows are written twice: gzip TFRecords for our DAG and the plain baseline, and
one CSV for TFX's example (CsvExampleGen). Both live outside the repository
(`~/.cache/tfx-taxi-bench/`, or $BENCH_CACHE) under a name derived from the recipe (row
count, seed, shards, generator version and the source files' hash), so a second
`make bench` reuses them and a changed recipe makes new ones. A directory is published
(renamed into place) only when complete.

Speed: a float in a tf.train.Example is a fixed 4 bytes, so each source record is
serialized once as a template and the replicas are made by patching those bytes with
numpy, instead of building 1.5M protos in Python.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOG = logging.getLogger("benchmarks.datagen")

PROJECT_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = PROJECT_DIR / "data" / "taxi"
GENERATOR_VERSION = 1
SEED = 20240801
ROWS_PER_SHARD = 150_000

MONEY = ("fare", "tips")  # scaled by the same factor: keeps the label
DISTANCE = ("trip_miles",)
COORDINATES = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
JITTERED = MONEY + DISTANCE + COORDINATES


@dataclass(frozen=True)
class BenchData:
    rows: int
    root: Path

    @property
    def tfrecord_dir(self) -> Path:
        return self.root / "tfrecord"

    @property
    def csv_dir(self) -> Path:
        return self.root / "csv"


def parse_size(text: str) -> int:
    """'15k' -> 15002 (the whole bundled sample), '150k' -> 150000, '1.5M' -> 1500000, '2000' -> 2000."""
    t = text.strip().lower()
    if t == "15k":
        return 15002
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    number = t[:-1] if scale > 1 else t
    value = int(round(float(number) * scale))
    if value < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return value


def size_label(rows: int) -> str:
    if rows == 15002:
        return "15k"
    if rows >= 1_000_000:
        return f"{rows / 1e6:g}M"
    if rows >= 1_000:
        return f"{rows / 1e3:g}k"
    return str(rows)


def source_files() -> list[str]:
    files = sorted(glob.glob(str(SOURCE_DIR / "*.tfrecord.gz")))
    if not files:
        raise FileNotFoundError(f"no source data under {SOURCE_DIR}")
    return files


def recipe(rows: int) -> dict:
    h = hashlib.sha256()
    for path in source_files():
        with open(path, "rb") as f:
            h.update(f.read())
    return {
        "rows": rows,
        "seed": SEED,
        "version": GENERATOR_VERSION,
        "shards": num_shards(rows),
        "source_sha256": h.hexdigest()[:16],
    }


def num_shards(rows: int) -> int:
    # Gzip files cannot be split: enough shards for every Beam worker to get some.
    return max(2, min(16, math.ceil(rows / ROWS_PER_SHARD)))


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "tfx-taxi-bench")


def ensure(rows: int, root: Path | None = None) -> BenchData:
    """The data set of `rows` rows, generated now unless already there with the same recipe."""
    spec = recipe(rows)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    out = (root or cache_root()) / f"taxi-{size_label(rows)}-{key}"
    if (out / "recipe.json").exists():
        LOG.info("data: reusing %s", out)
        return BenchData(rows, out)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    LOG.info("data: generating %d rows into %s", rows, out)
    generate(rows, tmp)
    (tmp / "recipe.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return BenchData(rows, out)


# --- reading the source -------------------------------------------------------------------


def _read_source():
    """(templates, columns): each record re-serialized in key order, and its values by column."""
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(source_files(), compression_type="GZIP")]
    examples = []
    for raw in records:
        ex = tf.train.Example()
        ex.ParseFromString(raw)
        examples.append(ex)
    names = sorted({k for ex in examples for k in ex.features.feature})
    columns: dict[str, tuple[str, list]] = {}
    for name in names:
        kinds = {ex.features.feature[name].WhichOneof("kind") for ex in examples if name in ex.features.feature}
        kind = kinds.pop()
        values = []
        for ex in examples:
            if name in ex.features.feature:
                values.append(getattr(ex.features.feature[name], kind).value[0])
            else:
                values.append(None)
        columns[name] = (kind, values)
    return examples, columns


def _templates(examples, columns):
    """Serialized records, and for each jittered float feature the byte offset of its value
    (-1 where absent). Offsets are found by serializing once with sentinel values."""
    sentinels = {name: struct.pack("<f", 1.0e-30 * (i + 3)) for i, name in enumerate(JITTERED)}
    templates, offsets = [], {name: np.full(len(examples), -1, np.int64) for name in JITTERED}
    for i, ex in enumerate(examples):
        templates.append(ex.SerializeToString(deterministic=True))
        marked = type(ex)()
        marked.CopyFrom(ex)
        present = [n for n in JITTERED if n in ex.features.feature]
        for n in present:
            marked.features.feature[n].float_list.value[0] = struct.unpack("<f", sentinels[n])[0]
        blob = marked.SerializeToString(deterministic=True)
        for n in present:
            at = blob.find(sentinels[n])
            if at < 0 or blob.count(sentinels[n]) != 1:
                raise RuntimeError(f"cannot locate {n} in record {i}")
            offsets[n][i] = at
    return templates, offsets


def _jitter(columns, replica: int, n: int) -> dict[str, np.ndarray]:
    """Jittered float64 values (rounded as the source is: cents, 1/100 mile, 1e-6 degree)."""
    rng = np.random.default_rng([SEED, replica])
    out = {}
    money = 1.0 + rng.uniform(-0.05, 0.05, n)
    distance = 1.0 + rng.uniform(-0.05, 0.05, n)
    for name in JITTERED:
        base = np.array([np.nan if v is None else v for v in columns[name][1]], np.float64)
        if replica == 0:
            out[name] = base
        elif name in MONEY:
            out[name] = np.round(base * money, 2)
        elif name in DISTANCE:
            out[name] = np.round(base * distance, 2)
        else:
            out[name] = np.round(base + rng.uniform(-0.001, 0.001, n), 6)
    return out


# --- writing ------------------------------------------------------------------------------


def generate(rows: int, out: Path) -> None:
    import pandas as pd
    import tensorflow as tf

    examples, columns = _read_source()
    templates, offsets = _templates(examples, columns)
    n = len(templates)
    lengths = np.array([len(t) for t in templates], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.frombuffer(b"".join(templates), np.uint8)

    shards = num_shards(rows)
    (out / "tfrecord").mkdir(parents=True)
    (out / "csv").mkdir(parents=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = [
        tf.io.TFRecordWriter(str(out / "tfrecord" / f"data-{i:05d}-of-{shards:05d}.tfrecord.gz"), options)
        for i in range(shards)
    ]
    csv_path = out / "csv" / "data.csv"
    written = 0
    replica = 0
    csv_header = True
    while written < rows:
        take = min(n, rows - written)
        values = _jitter(columns, replica, n)
        buf = flat.copy()
        for name in JITTERED:
            present = offsets[name] >= 0
            where = starts[present] + offsets[name][present]
            packed = values[name][present].astype("<f4").view(np.uint8).reshape(-1, 4)
            for b in range(4):
                buf[where + b] = packed[:, b]
        data = buf.tobytes()
        for i in range(take):
            writers[(written + i) % shards].write(data[starts[i] : starts[i] + lengths[i]])
        frame = {}
        for name, (kind, vals) in columns.items():
            if name in values:
                frame[name] = values[name][:take]
            elif kind == "int64_list":
                frame[name] = pd.array(vals[:take], dtype="Int64")
            elif kind == "float_list":
                frame[name] = np.array([np.nan if v is None else v for v in vals[:take]], np.float64)
            else:
                frame[name] = [None if v is None else v.decode() for v in vals[:take]]
        pd.DataFrame(frame).to_csv(
            csv_path, mode="w" if csv_header else "a", header=csv_header, index=False, float_format="%.6f"
        )
        csv_header = False
        written += take
        replica += 1
        LOG.info("data: %d/%d rows", written, rows)
    for w in writers:
        w.close()
