"""tf.Transform preprocessing: the same graph runs in Transform, training and serving."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components import features as F


def fill_in_missing(x: tf.Tensor | tf.SparseTensor, default=None) -> tf.Tensor:
    """Densify an optional feature, filling absent values with `default`.

    Optional features arrive as SparseTensors of shape [batch, <=1] (an absent feature is
    an empty row), required ones as dense [batch, 1] or [batch]; the result is always
    rank 1.
    """
    if default is None:
        default = "" if x.dtype == tf.string else 0
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
        )
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs: dict) -> dict:
    outputs = {}
    for key in F.DENSE_FLOAT_FEATURE_KEYS:
        value = tf.cast(fill_in_missing(inputs[key]), tf.float32)
        outputs[F.transformed_name(key)] = tft.scale_to_z_score(value)

    for key in F.VOCAB_FEATURE_KEYS:
        outputs[F.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            fill_in_missing(inputs[key]), top_k=F.VOCAB_SIZE, num_oov_buckets=F.OOV_SIZE,
            vocab_filename=key,
        )

    for key in F.BUCKET_FEATURE_KEYS:
        # A missing coordinate gets its own bucket (FEATURE_BUCKET_COUNT) and weight 0 in
        # the quantiles, rather than pretending to be at latitude 0.
        value = inputs[key]
        present = tf.ones_like(fill_in_missing(value), tf.float32)
        if isinstance(value, tf.SparseTensor):
            present = tf.cast(fill_in_missing(tf.sparse.map_values(tf.ones_like, value)), tf.float32)
        buckets = tft.bucketize(fill_in_missing(value), F.FEATURE_BUCKET_COUNT, weights=present)
        outputs[F.transformed_name(key)] = tf.where(
            present > 0, buckets, tf.constant(F.FEATURE_BUCKET_COUNT, buckets.dtype)
        )

    for key, max_value in F.CATEGORICAL_FEATURE_MAX_VALUES.items():
        # Out-of-range ids (and missing ones, filled with 0) share id 0.
        value = tf.cast(fill_in_missing(inputs[key]), tf.int64)
        in_range = tf.logical_and(value >= 0, value < max_value)
        outputs[F.transformed_name(key)] = tf.where(in_range, value, tf.zeros_like(value))

    fare = tf.cast(fill_in_missing(inputs[F.FARE_KEY]), tf.float32)
    tips = tf.cast(fill_in_missing(inputs[F.LABEL_KEY]), tf.float32)
    outputs[F.LABEL_XF] = tf.cast(tips > fare * F.BIG_TIP_FRACTION, tf.int64)
    return outputs
