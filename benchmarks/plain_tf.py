"""The plain baseline: the DAG's work in one TensorFlow process, no TFX, no Beam.

Why it exists: it is the floor the pipeline's overhead is measured against. It does the
same work as the DAG, in the simplest way that is still honest:
  read + parse every record; hash-split 2:1 (train:eval) as ExampleGen does;
  one-pass statistics per split (counts, missing, mean/std/min/max, distinct strings),
  which also give Transform's analysers on train (means, standard deviations, quantile
  boundaries, vocabularies);
  the same preprocessing (the same feature roles as the pipeline's taxi plan) as a TF function;
  the same wide-and-deep Keras model (written out here) for the same steps and batch size;
  evaluation on the whole eval split: AUC overall and per trip_start_hour;
  a SavedModel whose serving signature takes serialized tf.Examples.
What it leaves out: schema validation, TFMA's many metrics and slices, ML Metadata,
caching and the blessing/push logic. Those are part of what the DAG's time buys.

    python -m benchmarks.plain_tf --input DIR --out DIR [--steps 1000]
Prints one line `RESULT {json}` with the phase timings and the AUC.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

# The taxi model's feature roles, written out by hand as a plain TensorFlow user would
# (the pipeline derives the same ones from the schema and configs/local.toml).
F = SimpleNamespace(
    LABEL_KEY="tips",
    FARE_KEY="fare",
    BIG_TIP_FRACTION=0.2,
    DENSE_FLOAT_FEATURE_KEYS=("trip_miles", "fare", "trip_seconds"),
    BUCKET_FEATURE_KEYS=("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"),
    FEATURE_BUCKET_COUNT=10,
    CATEGORICAL_FEATURE_MAX_VALUES={
        "trip_start_hour": 24,
        "trip_start_day": 8,
        "trip_start_month": 13,
        "pickup_community_area": 78,
        "dropoff_community_area": 78,
    },
    VOCAB_FEATURE_KEYS=("payment_type", "company"),
    VOCAB_SIZE=1000,
    OOV_SIZE=10,
    transformed_name=lambda key: f"{key}_xf",
)

LOG = logging.getLogger("benchmarks.plain_tf")

FLOAT = ("fare", "tips", "trip_miles") + F.BUCKET_FEATURE_KEYS
INT = (
    "trip_seconds",
    "trip_start_hour",
    "trip_start_day",
    "trip_start_month",
    "trip_start_timestamp",
    "pickup_community_area",
    "dropoff_community_area",
    "pickup_census_tract",
    "dropoff_census_tract",
)
STRING = F.VOCAB_FEATURE_KEYS
MISSING_INT = -1  # every integer feature is >= 0 when present


def feature_spec(with_label: bool = True) -> dict:
    import tensorflow as tf

    spec = {k: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")) for k in FLOAT}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64, default_value=MISSING_INT) for k in INT})
    spec.update({k: tf.io.FixedLenFeature([], tf.string, default_value="") for k in STRING})
    if not with_label:
        spec.pop(F.LABEL_KEY)
    return spec


def read(files: list[str]) -> tuple[dict, dict]:
    """(train, eval) as dicts of numpy columns; split by a hash of each serialized record."""
    import tensorflow as tf

    spec = feature_spec()

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        parsed["_eval"] = tf.strings.to_hash_bucket_fast(serialized, 3) >= 2  # 2:1
        return parsed

    ds = (
        tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=len(files))
        .batch(8192)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(2)
    )
    chunks: dict[str, list] = {}
    for batch in ds:
        for k, v in batch.items():
            chunks.setdefault(k, []).append(v.numpy())
    columns = {k: np.concatenate(v) for k, v in chunks.items()}
    is_eval = columns.pop("_eval")
    return ({k: v[~is_eval] for k, v in columns.items()}, {k: v[is_eval] for k, v in columns.items()})


def statistics(split: dict) -> dict:
    """What StatisticsGen reports, in one pass over the columns."""
    out = {}
    for k, v in split.items():
        if k in STRING:
            present = v[v != b""]
            values, counts = np.unique(present, return_counts=True)
            out[k] = {"present": int(present.size), "distinct": int(values.size)}
        else:
            present = v[~np.isnan(v)] if k in FLOAT else v[v != MISSING_INT]
            out[k] = {
                "present": int(present.size),
                "mean": float(present.mean()) if present.size else None,
                "std": float(present.std()) if present.size else None,
                "min": float(present.min()) if present.size else None,
                "max": float(present.max()) if present.size else None,
            }
    return out


def analyse(train: dict) -> dict:
    """Transform's analysers on the train split: z-score moments, quantiles, vocabularies."""
    filled = {
        k: (np.nan_to_num(train[k], nan=0.0) if k in FLOAT else np.where(train[k] == MISSING_INT, 0, train[k])).astype(
            np.float64
        )
        for k in F.DENSE_FLOAT_FEATURE_KEYS
    }
    out = {
        "mean": {k: float(v.mean()) for k, v in filled.items()},
        "std": {k: float(v.std()) or 1.0 for k, v in filled.items()},
        "boundaries": {},
        "vocab": {},
    }
    qs = np.linspace(0, 1, F.FEATURE_BUCKET_COUNT + 1)[1:-1]
    for k in F.BUCKET_FEATURE_KEYS:
        present = train[k][~np.isnan(train[k])]
        out["boundaries"][k] = [float(b) for b in np.unique(np.quantile(present, qs))] if present.size else [0.0]
    for k in F.VOCAB_FEATURE_KEYS:
        values, counts = np.unique(train[k], return_counts=True)
        order = np.argsort(-counts, kind="stable")[: F.VOCAB_SIZE]
        out["vocab"][k] = [values[i] for i in order]
    return out


class Preprocess:
    """The DAG's preprocessing_fn, as plain TF ops with the analysers' results as constants."""

    def __init__(self, analysed: dict):
        import tensorflow as tf

        self.analysed = analysed
        self.tables = {
            k: tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(v, tf.string), tf.range(len(v), dtype=tf.int64)),
                default_value=len(v),
            )  # one out-of-vocabulary id
            for k, v in analysed["vocab"].items()
        }

    def __call__(self, raw: dict) -> tuple[dict, object]:
        import tensorflow as tf

        a, out = self.analysed, {}

        def zero_nan(x):
            return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)

        def filled_float(x):  # missing -> 0, as fill_in_missing does
            if x.dtype.is_integer:
                return tf.cast(tf.where(x == MISSING_INT, tf.zeros_like(x), x), tf.float32)
            return zero_nan(x)

        for k in F.DENSE_FLOAT_FEATURE_KEYS:
            out[F.transformed_name(k)] = (filled_float(raw[k]) - a["mean"][k]) / a["std"][k]
        for k in F.BUCKET_FEATURE_KEYS:
            x = raw[k]
            buckets = tf.raw_ops.Bucketize(input=zero_nan(x), boundaries=a["boundaries"][k])
            out[F.transformed_name(k)] = tf.where(
                tf.math.is_nan(x), tf.constant(F.FEATURE_BUCKET_COUNT, tf.int64), tf.cast(buckets, tf.int64)
            )
        for k, max_value in F.CATEGORICAL_FEATURE_MAX_VALUES.items():
            x = raw[k]
            out[F.transformed_name(k)] = tf.where((x >= 0) & (x < max_value), x, tf.zeros_like(x))
        for k in F.VOCAB_FEATURE_KEYS:
            out[F.transformed_name(k)] = self.tables[k].lookup(raw[k])
        out = {k: tf.reshape(v, [-1, 1]) for k, v in out.items()}
        label = None
        if F.LABEL_KEY in raw:
            label = tf.cast(zero_nan(raw[F.LABEL_KEY]) > zero_nan(raw[F.FARE_KEY]) * F.BIG_TIP_FRACTION, tf.int64)
        return out, label


def auc_by(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    out = {}
    for g in np.unique(groups):
        mask = groups == g
        if len(np.unique(labels[mask])) == 2:  # undefined with one class
            out[int(g)] = float(roc_auc_score(labels[mask], scores[mask]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="directory of gzip TFRecords")
    parser.add_argument("--out", required=True, help="where the SavedModel goes")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-steps", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.monotonic()
    phases = {}

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = round(now - since, 2)
        LOG.info("%-12s %6.1f s", name, now - since)
        return now

    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    t = phase("import", start)
    tf.keras.utils.set_random_seed(0)
    files = sorted(glob.glob(os.path.join(args.input, "*.tfrecord.gz")))
    train, evaluation = read(files)
    rows = len(train[F.LABEL_KEY]) + len(evaluation[F.LABEL_KEY])
    t = phase("read", t)
    stats = {"train": statistics(train), "eval": statistics(evaluation)}
    analysed = analyse(train)
    preprocess = Preprocess(analysed)
    t = phase("statistics", t)

    def dataset(split: dict, batch: int, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(split)
        if shuffle:
            ds = ds.shuffle(10_000, seed=0).repeat()
        return ds.batch(batch).map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    model = build_keras_model()
    model.fit(
        dataset(train, args.batch_size, True),
        epochs=1,
        steps_per_epoch=args.steps,
        validation_data=dataset(evaluation, args.batch_size, True),
        validation_steps=args.eval_steps,
        verbose=0,
    )
    t = phase("train", t)

    scores = np.concatenate(
        [
            model.predict_on_batch(features).reshape(-1)
            for features, _ in dataset({k: v for k, v in evaluation.items()}, 8192, False)
        ]
    )
    labels = np.nan_to_num(evaluation[F.LABEL_KEY]) > np.nan_to_num(evaluation[F.FARE_KEY]) * F.BIG_TIP_FRACTION
    auc = float(roc_auc_score(labels, scores))
    per_hour = auc_by(labels, scores, evaluation["trip_start_hour"])
    t = phase("evaluate", t)

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model, self.preprocess = model, preprocess
            self.tables = list(preprocess.tables.values())  # tracked, so they are saved

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            features, _ = self.preprocess(tf.io.parse_example(examples, feature_spec(with_label=False)))
            return {"probabilities": self.model(features)}

    serving = Serving()
    tf.saved_model.save(serving, args.out, signatures={"serving_default": serving.serve})
    t = phase("export", t)
    result = {
        "rows": rows,
        "train_rows": len(train[F.LABEL_KEY]),
        "eval_rows": len(labels),
        "auc": auc,
        "auc_per_hour": per_hour,
        "phases": phases,
        "total_s": round(time.monotonic() - start, 2),
        "features_with_stats": len(stats["train"]),
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def build_keras_model(hidden_units=(64, 32, 16), learning_rate: float = 1e-3):
    """Wide and deep, as the pipeline's taxi model: deep on the z-scored numbers, wide on
    one-hot categories."""
    import tensorflow as tf

    deep_inputs = {
        F.transformed_name(k): tf.keras.Input(name=F.transformed_name(k), shape=(1,), dtype=tf.float32)
        for k in F.DENSE_FLOAT_FEATURE_KEYS
    }
    num_tokens = {F.transformed_name(k): F.VOCAB_SIZE + F.OOV_SIZE for k in F.VOCAB_FEATURE_KEYS}
    num_tokens.update({F.transformed_name(k): F.FEATURE_BUCKET_COUNT + 1 for k in F.BUCKET_FEATURE_KEYS})
    num_tokens.update({F.transformed_name(k): n for k, n in F.CATEGORICAL_FEATURE_MAX_VALUES.items()})
    wide_inputs = {name: tf.keras.Input(name=name, shape=(1,), dtype=tf.int64) for name in num_tokens}
    deep = tf.keras.layers.concatenate(list(deep_inputs.values()))
    for units in hidden_units:
        deep = tf.keras.layers.Dense(units, activation="relu")(deep)
    wide = tf.keras.layers.concatenate(
        [
            tf.keras.layers.CategoryEncoding(num_tokens=n, output_mode="one_hot")(wide_inputs[name])
            for name, n in num_tokens.items()
        ]
    )
    output = tf.keras.layers.Dense(1, activation="sigmoid", name="probability")(
        tf.keras.layers.concatenate([deep, wide])
    )
    model = tf.keras.Model(inputs={**deep_inputs, **wide_inputs}, outputs=output)
    model.compile(
        loss="binary_crossentropy",
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        metrics=[tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")],
    )
    return model


if __name__ == "__main__":
    sys.exit(main())
