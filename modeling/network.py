"""The wide-and-deep Keras model over Transform's outputs, with the head the task needs.

Deep part: the z-scored numbers and missing indicators through `hidden_units`; wide part:
a weight per category value (one-hot times weights, as a lookup). The head is a sigmoid (binary), a softmax over the plan's classes
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


def build_keras_model(
    plan: Plan,
    sizes: dict[str, int],
    hidden_units=(64, 32, 16),
    learning_rate: float = 1e-3,
    label_mean: float = 0.0,
    label_std: float = 1.0,
) -> tf.keras.Model:
    deep_keys = [f.key for f in plan.features if f.role == "numeric"]
    deep_keys += [missing_key(f.key) for f in plan.features if f.optional]
    inputs = {k: tf.keras.Input(name=k, shape=(1,), dtype=tf.float32) for k in deep_keys}
    inputs.update({k: tf.keras.Input(name=k, shape=(1,), dtype=tf.int64) for k in sizes})

    deep = None
    if deep_keys:
        deep = (
            tf.keras.layers.concatenate([inputs[k] for k in deep_keys]) if len(deep_keys) > 1 else inputs[deep_keys[0]]
        )
        for units in hidden_units:
            deep = tf.keras.layers.Dense(units, activation="relu")(deep)

    def logits(units: int):
        """The deep part's units plus each category's weights: one-hot times a weight matrix,
        computed as the lookup of that matrix's row (an Embedding), which every LiteRT
        runtime has (GATHER) and which stays exact in int8; CategoryEncoding's one-hot is
        DenseBincount, a Select TF op LiteRT.js lacks (docs/edge.md)."""
        terms = [tf.keras.layers.Dense(units)(deep)] if deep is not None else []
        terms += [
            tf.keras.layers.Reshape((units,))(
                tf.keras.layers.Embedding(n, units, embeddings_initializer="zeros", name=f"wide_{k}")(inputs[k])
            )
            for k, n in sizes.items()
        ]
        return tf.keras.layers.Add()(terms) if len(terms) > 1 else terms[0]

    if plan.task == "binary":
        output = tf.keras.layers.Activation("sigmoid", name="probabilities")(logits(1))
        loss = "binary_crossentropy"
        metrics = [tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")]
    elif plan.task == "multiclass":
        output = tf.keras.layers.Activation("softmax", name="probabilities")(logits(len(plan.classes)))
        loss = "sparse_categorical_crossentropy"
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        unit = tf.keras.layers.Activation("linear", name="standardized")(logits(1))
        output = tf.keras.layers.Rescaling(scale=label_std or 1.0, offset=label_mean, name="predictions")(unit)
        loss = "mean_squared_error"  # Adam makes the label's scale irrelevant to the steps
        metrics = [tf.keras.metrics.MeanAbsoluteError(name="mae")]
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(loss=loss, optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate), metrics=metrics)
    return model
