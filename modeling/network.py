"""The wide-and-deep Keras model over Transform's outputs, with the head the task needs.

Deep part: the z-scored numbers and missing indicators through `hidden_units`; wide part:
every category one-hot. The head is a sigmoid (binary), a softmax over the plan's classes
(multiclass) or a linear unit scaled to the label's mean and spread (regression).
"""

from __future__ import annotations

import tensorflow as tf

from modeling.preprocessing import missing_key
from modeling.roles import Plan


def category_sizes(plan: Plan, tf_transform_output) -> dict[str, int]:
    """How many ids each categorical transformed feature can take (vocabulary + OOV)."""
    sizes = {}
    for f in plan.features:
        if f.role == "bucketized":
            sizes[f.key] = plan.quantile_buckets + 1
        elif f.role in ("integer_categorical", "string_vocabulary"):
            sizes[f.key] = tf_transform_output.vocabulary_size_by_name(f"vocab_{f.key}") + plan.oov_buckets
    return sizes


def build_keras_model(plan: Plan, sizes: dict[str, int], hidden_units=(64, 32, 16),
                      learning_rate: float = 1e-3, label_mean: float = 0.0,
                      label_std: float = 1.0) -> tf.keras.Model:
    deep_keys = [f.key for f in plan.features if f.role == "numeric"]
    deep_keys += [missing_key(f.key) for f in plan.features if f.optional]
    inputs = {k: tf.keras.Input(name=k, shape=(1,), dtype=tf.float32) for k in deep_keys}
    inputs.update({k: tf.keras.Input(name=k, shape=(1,), dtype=tf.int64) for k in sizes})

    parts = []
    if deep_keys:
        deep = tf.keras.layers.concatenate([inputs[k] for k in deep_keys]) if len(deep_keys) > 1 \
            else inputs[deep_keys[0]]
        for units in hidden_units:
            deep = tf.keras.layers.Dense(units, activation="relu")(deep)
        parts.append(deep)
    parts += [tf.keras.layers.CategoryEncoding(num_tokens=n, output_mode="one_hot")(inputs[k])
              for k, n in sizes.items()]
    joined = tf.keras.layers.concatenate(parts) if len(parts) > 1 else parts[0]

    if plan.task == "binary":
        output = tf.keras.layers.Dense(1, activation="sigmoid", name="probabilities")(joined)
        loss = "binary_crossentropy"
        metrics = [tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")]
    elif plan.task == "multiclass":
        output = tf.keras.layers.Dense(len(plan.classes), activation="softmax", name="probabilities")(joined)
        loss = "sparse_categorical_crossentropy"
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        unit = tf.keras.layers.Dense(1, name="standardized")(joined)
        output = tf.keras.layers.Rescaling(scale=label_std or 1.0, offset=label_mean, name="predictions")(unit)
        loss = "mean_squared_error"  # Adam makes the label's scale irrelevant to the steps
        metrics = [tf.keras.metrics.MeanAbsoluteError(name="mae")]
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(loss=loss, optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate), metrics=metrics)
    return model
