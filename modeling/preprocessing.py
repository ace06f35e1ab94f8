"""tf.Transform preprocessing made from the plan: the same graph runs in Transform,
training and serving.

`preprocessing_fn(inputs, custom_config)` is an ordinary tf.Transform function: to replace
it, point Transform at your own. Each feature is read as one value per example plus a
"present" mask (optional features may be absent; a NaN or infinity counts as absent), so
the transforms below never see a hole.
"""

from __future__ import annotations

import importlib

import tensorflow as tf
import tensorflow_transform as tft

from modeling.roles import LABEL_KEY, Plan

PLAN_KEY = "plan"


def first_value(x, default) -> tuple[tf.Tensor, tf.Tensor]:
    """(value, present) of rank 1 for a dense [batch, 1] / [batch] or a sparse feature."""
    if isinstance(x, tf.SparseTensor):
        ragged = tf.RaggedTensor.from_sparse(x)
        present = ragged.row_lengths() > 0
        value = ragged[:, :1].to_tensor(default_value=default, shape=[None, 1])
        return tf.reshape(value, [-1]), present
    if isinstance(x, tf.RaggedTensor):
        present = x.row_lengths() > 0
        return tf.reshape(x[:, :1].to_tensor(default_value=default, shape=[None, 1]), [-1]), present
    value = tf.reshape(x, [-1])
    return value, tf.ones_like(value, dtype=tf.bool)


def dense(x, default=None) -> tf.Tensor:
    """A feature as one value per example, absent values filled with `default` (for hooks)."""
    if default is None:
        default = "" if x.dtype == tf.string else 0
    return first_value(x, tf.cast(default, x.dtype))[0]


def _numeric(x) -> tuple[tf.Tensor, tf.Tensor]:
    value, present = first_value(x, tf.cast(0, x.dtype))
    value = tf.cast(value, tf.float32)
    present = tf.logical_and(present, tf.math.is_finite(value))
    return tf.where(present, value, 0.0), present


def _z_score(value: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
    """Mean and variance over the present values only; absent ones land on the mean (0)."""
    observed = tf.boolean_mask(value, present)
    mean = tft.mean(observed)
    std = tf.sqrt(tft.var(observed))
    scaled = tf.math.divide_no_nan(value - mean, std)
    return tf.where(present, scaled, 0.0)


def _bucketize(value: tf.Tensor, present: tf.Tensor, buckets: int) -> tf.Tensor:
    """Quantile buckets of the present values; an absent value gets bucket `buckets`."""
    ids = tft.bucketize(value, buckets, weights=tf.cast(present, tf.float32))
    return tf.where(present, ids, tf.constant(buckets, ids.dtype))


def _vocabulary(x, key: str, plan: Plan) -> tf.Tensor:
    default = "" if x.dtype == tf.string else tf.cast(0, x.dtype)
    value, _ = first_value(x, default)
    if value.dtype != tf.string:
        value = tf.cast(value, tf.int64)
    return tft.compute_and_apply_vocabulary(
        value, top_k=plan.vocab_size, num_oov_buckets=plan.oov_buckets, vocab_filename=f"vocab_{key}"
    )


def label_tensor(inputs: dict, plan: Plan) -> tf.Tensor:
    """The training target: int64 0/1 (binary), int64 class id (multiclass, -1 for a class
    the plan does not know), float32 (regression)."""
    if plan.hook:
        y = importlib.import_module(plan.hook).label(inputs)
        return tf.cast(y, tf.float32 if plan.task == "regression" else tf.int64)
    raw = inputs[plan.label]
    if plan.task == "regression":
        return _numeric(raw)[0]
    default = "" if raw.dtype == tf.string else tf.cast(0, raw.dtype)
    value, _ = first_value(raw, default)
    if plan.label_dtype == "float":  # binary only (the plan refuses a float multiclass)
        return tf.cast(tf.equal(value, float(plan.positive_class or 1)), tf.int64)
    text = value if value.dtype == tf.string else tf.strings.as_string(tf.cast(value, tf.int64))
    if plan.task == "binary":
        return tf.cast(tf.equal(text, plan.positive_class), tf.int64)
    matches = tf.equal(tf.expand_dims(text, 1), tf.constant(plan.classes)[tf.newaxis, :])
    return tf.where(tf.reduce_any(matches, axis=1), tf.argmax(tf.cast(matches, tf.int32), axis=1), -1)


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    plan = Plan.from_json(custom_config[PLAN_KEY])
    outputs = {}
    for f in plan.features:
        x = inputs[f.name]
        if f.role in ("numeric", "bucketized"):
            value, present = _numeric(x)
            if f.role == "numeric":
                outputs[f.key] = _z_score(value, present)
            else:
                outputs[f.key] = _bucketize(value, present, plan.quantile_buckets)
        else:
            outputs[f.key] = _vocabulary(x, f.key, plan)
            present = first_value(x, "" if x.dtype == tf.string else tf.cast(0, x.dtype))[1]
        if f.optional:
            outputs[missing_key(f.key)] = 1.0 - tf.cast(present, tf.float32)
    outputs[LABEL_KEY] = label_tensor(inputs, plan)
    return outputs


def missing_key(key: str) -> str:
    return key.removesuffix("_xf") + "_missing_xf"
