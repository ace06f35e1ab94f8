"""The trained model as LiteRT (TFLite) models for devices and the browser, float and int8.

What goes on the device is the Keras part of the exported SavedModel only, with float32 and
int32 inputs (LiteRT.js has no strings and no int64); the Transform graph's lookups and
buckets become `edge_features.json` for modeling/edge_features.py and web/edge_features.js.

The numbers in that file are read from the Transform graph by asking it, not from its
internals (which change between tf.Transform versions): the boundaries of a bucketized
feature and the mean of a numeric one are found exactly by bisection over float32 values,
the spread by checking the float32 neighbours of an estimate; vocabularies are TFT's own
files. `check_features` then holds the result equal to the graph on real examples.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import tensorflow as tf
from scipy.stats import rankdata

from modeling.edge_features import EdgeFeatures, missing_key, record_of_example
from modeling.roles import LABEL_KEY, Plan

_F32_MAX = float(np.finfo(np.float32).max)


def _key(x: float) -> int:
    """float32 -> an integer that sorts like the float (for bisection over every float32)."""
    b = struct.unpack("<i", struct.pack("<f", x))[0]
    return b if b >= 0 else -(b & 0x7FFFFFFF)


def _float(k: int) -> float:
    b = k if k >= 0 else (-k) | 0x80000000
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFFFFFF))[0]


class _Probe:
    """The Transform graph applied to copies of one real example with one feature changed."""

    def __init__(self, tf_transform_output, base_example: bytes):
        self.layer = tf_transform_output.transform_features_layer()
        self.spec = tf_transform_output.raw_feature_spec()
        self.base = tf.train.Example.FromString(base_example)

    def __call__(self, name: str, values: list, kind: str) -> dict:
        return self.rows([(name, v, kind) for v in values])

    def rows(self, changes: list[tuple[str, object, str]]) -> dict:
        """Transformed features of one copy per (feature, value, kind): the value replaces
        the feature's (None: absent)."""
        rows = []
        for name, v, kind in changes:
            ex = tf.train.Example()
            ex.CopyFrom(self.base)
            feature = ex.features.feature[name]
            feature.Clear()
            if v is not None:
                getattr(feature, kind).value.append(v)
            rows.append(ex.SerializeToString())
        out = self.layer(tf.io.parse_example(tf.constant(rows), self.spec))
        return {k: v.numpy().reshape(-1) for k, v in out.items() if k != LABEL_KEY}


def _bisect_all(probe, searches: list[tuple[str, str, float, bool]]) -> list[float]:
    """For each (feature, key, target, integer): the smallest value (float32, or integer)
    whose transformed value is >= target. All searches share one batch per step."""

    def bound(integer):
        return 2**40 if integer else _key(_F32_MAX)

    def value(m, integer):
        return int(m) if integer else _float(m)

    lo = [-bound(s[3]) for s in searches]
    hi = [bound(s[3]) for s in searches]
    while any(h - l > 1 for l, h in zip(lo, hi)):
        mid = [(l + h) // 2 for l, h in zip(lo, hi)]
        got = probe.rows(
            [
                (name, value(m, integer), "int64_list" if integer else "float_list")
                for m, (name, _, _, integer) in zip(mid, searches)
            ]
        )
        for i, (m, (_, key, target, _)) in enumerate(zip(mid, searches)):
            if got[key][i] >= target:
                hi[i] = m
            else:
                lo[i] = m
    return [value(h, s[3]) for h, s in zip(hi, searches)]


def _neighbours(x: float, n: int = 8) -> list[float]:
    return [_float(_key(x) + k) for k in sorted(range(-n, n + 1), key=abs)]


def _numeric_params(probe, name: str, key: str, integer: bool) -> dict:
    """Mean and spread from the z-scores of a few values, then the float32 pair that gives
    exactly the graph's z-scores (the estimate itself when none does)."""
    xs = [0, 1, 7, -5, 1000, 123457, 2**20, -(2**20)]
    z = probe(name, [x if integer else float(x) for x in xs], "int64_list" if integer else "float_list")[key]
    if not np.any(z):
        return {"mean": 0.0, "std": 0.0}
    std = float(np.float32((xs[6] - xs[7]) / (float(z[6]) - float(z[7]))))
    mean = float(np.float32(-float(z[0]) * std))
    x32 = np.array(xs, dtype=np.float32)
    for m in _neighbours(mean):
        for sd in _neighbours(std):
            if np.array_equal((x32 - np.float32(m)) / np.float32(sd), z):
                return {"mean": m, "std": sd}
    return {"mean": mean, "std": std}


def _bucket_tops(probe, buckets: list) -> list[int]:
    """How many boundaries each bucketized feature has (its bucket at the largest value)."""
    if not buckets:
        return []
    changes = []
    for f in buckets:
        kind, top = ("int64_list", 2**40) if f.dtype == "int" else ("float_list", _F32_MAX)
        changes += [(f.name, top, kind), (f.name, -top, kind)]
    got = probe.rows(changes)
    tops = []
    for i, f in enumerate(buckets):
        if int(got[f.key][2 * i + 1]) != 0:
            raise ValueError(f"edge export: the buckets of {f.name!r} do not start at 0")
        tops.append(int(got[f.key][2 * i]))
    return tops


def feature_spec(plan: Plan, tf_transform_output, base_example: bytes) -> dict:
    """edge_features.json: what modeling/edge_features.py needs to do the Transform's work."""
    probe = _Probe(tf_transform_output, base_example)
    buckets = [f for f in plan.features if f.role == "bucketized"]
    searches = [
        (f.name, f.key, float(i), f.dtype == "int")
        for f, top in zip(buckets, _bucket_tops(probe, buckets))
        for i in range(1, top + 1)
    ]
    found = _bisect_all(probe, searches) if searches else []
    features = []
    for f in plan.features:
        entry = {"name": f.name, "key": f.key, "role": f.role, "dtype": f.dtype, "optional": f.optional}
        if f.role == "numeric":
            entry.update(_numeric_params(probe, f.name, f.key, f.dtype == "int"))
        elif f.role == "bucketized":
            entry["boundaries"] = [b for (name, *_), b in zip(searches, found) if name == f.name]
            entry["absent_bucket"] = plan.quantile_buckets
        else:
            if plan.oov_buckets != 1:
                raise ValueError(
                    f"oov_buckets: the edge model needs 1 (TFT hashes into more, which the "
                    f"browser cannot repeat); got {plan.oov_buckets}; or set edge_export=false"
                )
            vocab = tf_transform_output.vocabulary_by_name(f"vocab_{f.key}")
            entry["vocabulary"] = [v.decode("utf-8", "replace") for v in vocab]
            entry["default"] = "" if f.dtype == "string" else 0
        features.append(entry)
    return {
        "task": plan.task,
        "classes": list(plan.classes),
        "output": plan.output_key,
        "inputs": input_dtypes(plan),
        "features": features,
    }


def input_dtypes(plan: Plan) -> dict[str, str]:
    """The edge model's inputs, each [batch, 1]: float32 for numbers, int32 for category ids."""
    inputs = {}
    for f in plan.features:
        inputs[f.key] = "float32" if f.role == "numeric" else "int32"
        if f.optional:
            inputs[missing_key(f.key)] = "float32"
    return inputs


def check_features(spec: dict, tf_transform_output, examples: list[bytes]) -> float:
    """The largest difference between edge_features.py and the Transform graph on `examples`."""
    plan_inputs = spec["inputs"]
    layer = tf_transform_output.transform_features_layer()
    graph = layer(tf.io.parse_example(tf.constant(examples), tf_transform_output.raw_feature_spec()))
    ours = edge_inputs(spec, examples)
    worst = 0.0
    for key in plan_inputs:
        theirs = graph[key].numpy().reshape(-1).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(theirs - ours[key].reshape(-1).astype(np.float64)))))
    return worst


def edge_inputs(spec: dict, examples: list[bytes]) -> dict[str, np.ndarray]:
    """The edge model's input arrays for serialized tf.Examples, by edge_features.py."""
    transform = EdgeFeatures(spec)
    names = [f["name"] for f in spec["features"]]
    rows = [transform(record_of_example(tf.train.Example.FromString(e), names)) for e in examples]
    return {
        k: np.array([[r[k]] for r in rows], dtype=np.float32 if t == "float32" else np.int32)
        for k, t in spec["inputs"].items()
    }


def keras_function(loaded, plan: Plan):
    """(the loaded model, its Keras part as a function of float32 / int32 [1, 1] inputs).

    One example per call, a static shape: LiteRT.js refuses a tensor whose shape differs
    from the model's, dynamic batch included, and a device scores one record at a time."""
    dtypes = input_dtypes(plan)
    signature = {
        k: tf.TensorSpec([1, 1], tf.float32 if t == "float32" else tf.int32, name=k) for k, t in dtypes.items()
    }

    @tf.function(input_signature=[signature])
    def edge(inputs):
        keras_inputs = {k: v if v.dtype == tf.float32 else tf.cast(v, tf.int64) for k, v in inputs.items()}
        return {plan.output_key: loaded(keras_inputs, training=False)}

    return loaded, edge


def save_edge_model(loaded, plan: Plan, out_dir: str) -> str:
    """The Keras part as a SavedModel of its own with one float32 / int32 signature: what the
    converter reads (faster than converting a traced function, and the representative
    data set is matched to inputs by name). `loaded`: the trained SavedModel, loaded; only
    its variables are kept (not the Transform graph's tables and assets)."""
    loaded, fn = keras_function(loaded, plan)
    holder = tf.Module()
    holder.variables_ = list(loaded.variables)
    tf.saved_model.save(holder, out_dir, signatures={"serving_default": fn.get_concrete_function()})
    return out_dir


def convert(edge_saved_model: str, representative: dict[str, np.ndarray] | None = None) -> bytes:
    """A LiteRT flatbuffer: float, or int8 weights and activations (float32 in and out) when
    `representative` inputs are given; ops without an int8 kernel stay float."""
    converter = tf.lite.TFLiteConverter.from_saved_model(edge_saved_model)
    if representative:
        n = len(next(iter(representative.values())))

        def samples():
            for i in range(n):
                yield {k: v[i : i + 1] for k, v in representative.items()}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
    return converter.convert()


def float_ops(model: bytes) -> list[str]:
    """Operations of an int8 model that still compute in float (their inputs or outputs are)."""
    interpreter = tf.lite.Interpreter(model_content=model)
    details = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    found = set()
    for op in interpreter._get_ops_details():  # the public Analyzer only prints
        io = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(details.get(i) == np.float32 for i in io) and op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):
            found.add(op["op_name"])
    return sorted(found)


class EdgeRunner:
    """One LiteRT model under TensorFlow's interpreter, fed the edge inputs by name."""

    def __init__(self, model: bytes, output: str):
        self.interpreter = tf.lite.Interpreter(model_content=model, num_threads=1)
        self.runner = self.interpreter.get_signature_runner()
        self.output = output

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Outputs for [N, 1] inputs, one example at a time as on a device."""
        n = len(next(iter(inputs.values())))
        return np.concatenate(
            [self.runner(**{k: v[i : i + 1] for k, v in inputs.items()})[self.output] for i in range(n)]
        )


def metrics(task: str, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The task's headline metrics, computed the same way for every model compared."""
    if task == "regression":
        err = scores.reshape(-1) - labels.reshape(-1)
        return {
            "mean_absolute_error": float(np.mean(np.abs(err))),
            "root_mean_squared_error": float(math.sqrt(np.mean(err**2))),
        }
    if task == "multiclass":
        known = labels >= 0
        return {"accuracy": float(np.mean(np.argmax(scores[known], axis=1) == labels[known]))}
    p = scores.reshape(-1)
    y = labels.reshape(-1).astype(bool)
    ranks = rankdata(p)  # ties share their mean rank
    pos, neg = y.sum(), (~y).sum()
    auc = (ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg) if pos and neg else float("nan")
    return {"auc": float(auc), "binary_accuracy": float(np.mean((p >= 0.5) == y))}


# Metrics where smaller is better: their "drop" is an increase.
LOWER_IS_BETTER = ("mean_absolute_error", "root_mean_squared_error")
