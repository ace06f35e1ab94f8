"""The exported model's signatures, in the shapes TF Serving's three APIs accept.

- `serving_default` (Predict): serialized tf.Examples without the label under `examples`;
  returns `probabilities` [N, 1] (binary), `probabilities` [N, K] and `classes` [N, K]
  (multiclass) or `predictions` [N, 1] (regression).
- `classification` (Classify; binary and multiclass) and `regression` (Regress): TF
  Serving requires one string input named `inputs` (tensorflow_serving/servables/
  tensorflow/classifier.cc and regressor.cc, the signature's input key must be
  kClassifyInputs / kRegressInputs, "inputs"), and outputs `classes` (string) + `scores`
  (float) [N, K], or `outputs` [N] / [N, 1].
- `transform_features`: what TFMA uses to get the label and the transformed features.

Clients send only the features the model reads (the plan's), so a column the model
ignores is never required at serving time.
"""

from __future__ import annotations

import tensorflow as tf

from modeling.roles import LABEL_KEY, Plan


def serving_signatures(model: tf.keras.Model, tf_transform_output, plan: Plan) -> dict:
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {f.name: raw_spec[f.name] for f in plan.features}
    examples = tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")
    inputs = tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")
    class_names = tf.constant(plan.classes or ["0", "1"])

    def predict(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        transformed.pop(LABEL_KEY, None)
        return model(transformed)

    def scores(serialized):
        out = predict(serialized)
        return tf.concat([1.0 - out, out], axis=1) if plan.task == "binary" else out

    def tiled_classes(batch_scores):
        return tf.tile(class_names[tf.newaxis, :], [tf.shape(batch_scores)[0], 1])

    @tf.function(input_signature=[examples])
    def serve(serialized):
        out = predict(serialized)
        if plan.task == "regression":
            return {"predictions": out}
        if plan.task == "binary":
            return {"probabilities": out}
        return {"probabilities": out, "classes": tiled_classes(out)}

    @tf.function(input_signature=[inputs])
    def classify(serialized):
        s = scores(serialized)
        return {"classes": tiled_classes(s), "scores": s}

    @tf.function(input_signature=[inputs])
    def regress(serialized):
        return {"outputs": predict(serialized)}

    @tf.function(input_signature=[examples])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    signatures = {"serving_default": serve, "transform_features": transform_features}
    if plan.task == "regression":
        signatures["regression"] = regress
    else:
        signatures["classification"] = classify
    return signatures


def client_signatures(task: str) -> tuple[str, ...]:
    """The signatures a TF Serving client calls for a model of this task."""
    return ("serving_default", "regression" if task == "regression" else "classification")
