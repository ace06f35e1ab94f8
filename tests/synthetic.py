"""Small tabular data sets that are not the taxi data, one per task, made by the tests.

Column names are deliberately awkward (spaces, dots, dashes, leading digits), some values
are missing, and each label depends on the features, so a model that learns anything
shows it in its metrics.
"""

from __future__ import annotations

import os

import numpy as np


def _feature(value):
    import tensorflow as tf

    if value is None:
        return None
    if isinstance(value, str):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    if isinstance(value, (int, np.integer)):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def write_tfrecords(rows: list[dict], directory, files: int = 2, gzip: bool = True) -> list[str]:
    """Rows as tf.train.Examples (a None value is an absent feature) in `files` files."""
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    paths = [os.path.join(directory, f"part-{i:05d}.tfrecord{'.gz' if gzip else ''}") for i in range(files)]
    writers = [tf.io.TFRecordWriter(p, options) for p in paths]
    for i, row in enumerate(rows):
        feats = {k: f for k, f in ((k, _feature(v)) for k, v in row.items()) if f is not None}
        writers[i % files].write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    for w in writers:
        w.close()
    return paths


def loans(n: int = 1500, seed: int = 0) -> list[dict]:
    """Binary, string labels: "approve" / "deny"."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        income = rng.lognormal(10.5, 0.5)
        ratio = rng.uniform(0, 1)
        score = int(rng.integers(0, 6))
        kind = rng.choice(["salaried", "self-employed", "retired", "student"])
        logit = (
            2.5 * (np.log(income) - 10.5)
            - 3 * (ratio - 0.5)
            + 0.6 * (score - 2.5)
            + {"salaried": 0.8, "self-employed": 0.0, "retired": 0.3, "student": -1.2}[kind]
        )
        rows.append(
            {
                "annual income": income,
                "debt.ratio": ratio if rng.uniform() > 0.1 else None,  # optional: 10% missing
                "3rd_party score": score,
                "employment-type": str(kind),
                "Decision": "approve" if rng.uniform() < 1 / (1 + np.exp(-logit)) else "deny",
            }
        )
    return rows


def species(n: int = 1500, seed: int = 1) -> list[dict]:
    """Multiclass, integer class ids 0..3."""
    rng = np.random.default_rng(seed)
    centres = np.array([[1.0, 0.2], [3.0, 1.0], [5.0, 1.8], [3.0, 2.6]])
    rows = []
    for _ in range(n):
        k = int(rng.integers(0, 4))
        length, width = centres[k] + rng.normal(0, 0.45, 2)
        rows.append(
            {
                "petal length": float(length),
                "petal.width": float(width),
                "2nd habitat": str(rng.choice(["wet", "dry"] if k < 2 else ["dry", "rocky"])),
                "class id": k,
            }
        )
    return rows


def prices(n: int = 1500, seed: int = 2) -> list[dict]:
    """Regression, a float label in the hundreds of thousands."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        area = rng.uniform(40, 200)
        rooms = int(rng.integers(1, 6))
        hood = rng.choice(["north", "south", "east-side", "west.end"])
        price = (
            2500 * area
            + 15000 * rooms
            + {"north": 80000, "south": 0, "east-side": 40000, "west.end": 120000}[hood]
            + rng.normal(0, 20000)
        )
        rows.append(
            {
                "floor area (m2)": area,
                "rooms": rooms,
                "neighbour-hood": str(hood),
                "year built": int(rng.integers(1900, 2020)) if rng.uniform() > 0.2 else None,
                "sale price": float(price),
            }
        )
    return rows
