"""The wide-and-deep Keras model over Transform's outputs, and its serving signatures."""

from __future__ import annotations

import tensorflow as tf

from components import features as F


def build_keras_model(hidden_units: tuple[int, ...] = (64, 32, 16), learning_rate: float = 1e-3) -> tf.keras.Model:
    """Deep part on the z-scored numbers, wide part on one-hot categories."""
    deep_inputs = {
        F.transformed_name(k): tf.keras.Input(name=F.transformed_name(k), shape=(1,), dtype=tf.float32)
        for k in F.DENSE_FLOAT_FEATURE_KEYS
    }
    num_tokens = {F.transformed_name(k): F.VOCAB_SIZE + F.OOV_SIZE for k in F.VOCAB_FEATURE_KEYS}
    num_tokens.update({F.transformed_name(k): F.FEATURE_BUCKET_COUNT + 1 for k in F.BUCKET_FEATURE_KEYS})
    num_tokens.update({F.transformed_name(k): n for k, n in F.CATEGORICAL_FEATURE_MAX_VALUES.items()})
    wide_inputs = {
        name: tf.keras.Input(name=name, shape=(1,), dtype=tf.int64) for name in num_tokens
    }

    deep = tf.keras.layers.concatenate(list(deep_inputs.values()))
    for units in hidden_units:
        deep = tf.keras.layers.Dense(units, activation="relu")(deep)
    wide = tf.keras.layers.concatenate([
        tf.keras.layers.CategoryEncoding(num_tokens=n, output_mode="one_hot")(wide_inputs[name])
        for name, n in num_tokens.items()
    ])
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


def serving_signatures(model: tf.keras.Model, tf_transform_output) -> dict:
    """`serving_default` takes serialized tf.Examples without the label and returns
    probabilities; `classification` is the same model in the shape TF Serving's Classify API
    needs (one string input named `inputs`; `classes` ["0", "1"] and their `scores`), so
    Classify works on the real TF Serving too; `transform_features` is what TFMA uses to get the label and
    features."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != F.LABEL_KEY}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        transformed.pop(F.LABEL_XF, None)
        return {"probabilities": model(transformed)}

    # TF Serving's Classify feeds the signature's single input, which must be named "inputs"
    # (tensorflow_serving/servables/tensorflow/classifier.cc:194-199).
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")])
    def classify_tf_examples(serialized):
        big_tip = serve_tf_examples(serialized)["probabilities"]  # [batch, 1]
        scores = tf.concat([1.0 - big_tip, big_tip], axis=1)
        classes = tf.tile(tf.constant([[b"0", b"1"]]), [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {"serving_default": serve_tf_examples, "classification": classify_tf_examples,
            "transform_features": transform_features}
