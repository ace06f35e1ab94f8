"""TF Serving's request semantics in serving.model and serving.rest, on a tiny real SavedModel.

The taxi model has one kind of signature; this one has the others TF Serving knows
(several named inputs and outputs, a regression signature), so Predict's input checks,
the REST row/columnar formats, Regress and the JSON-to-tf.Example rules are all exercised
without training anything.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import regression_pb2

from serving import rest
from serving.model import LoadedModel, ServingError


class Tiny(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x"),
                                  tf.TensorSpec([None], tf.string, name="s")])
    def predict(self, x, s):
        return {"sum": tf.reduce_sum(x, axis=1), "length": tf.strings.length(s)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def regress(self, examples):
        parsed = tf.io.parse_example(examples, {"v": tf.io.FixedLenFeature([], tf.float32),
                                                "k": tf.io.FixedLenFeature([], tf.int64, default_value=1)})
        return {"outputs": parsed["v"] * tf.cast(parsed["k"], tf.float32)}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> LoadedModel:
    path = tmp_path_factory.mktemp("tiny") / "7"
    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict, "regress": module.regress})
    return LoadedModel("tiny", str(path), 7)


def test_predict_checks_input_names_and_filters_outputs(model):
    out = model.predict_arrays("", {"x": np.array([[1, 2], [3, 4]], np.float32), "s": np.array([b"ab", b"c"], object)})
    assert out["sum"].tolist() == [3.0, 7.0] and out["length"].tolist() == [2, 1]
    with pytest.raises(ServingError, match=r"Missing but required: \{s\}") as e:
        model.predict_arrays("", {"x": np.zeros((1, 2), np.float32)})
    assert e.value.code == "INVALID_ARGUMENT"
    only = model.predict_arrays("", {"x": np.zeros((1, 2), np.float32), "s": np.array([b""], object)}, ["sum"])
    assert set(only) == {"sum"}
    with pytest.raises(ServingError, match="output tensor alias not found"):
        model.predict_arrays("", {"x": np.zeros((1, 2), np.float32), "s": np.array([b""], object)}, ["nope"])


def test_rest_row_and_columnar_formats(model):
    rows, is_rows = rest.predict_inputs({"instances": [{"x": [1, 2], "s": "ab"}, {"x": [3, 4], "s": {"b64": "AAE="}}]}, model)
    assert is_rows and rows["s"].tolist() == [b"ab", b"\x00\x01"]
    answer = rest.predict_json(model.predict_arrays("", rows), is_rows)
    assert answer == {"predictions": [{"sum": 3.0, "length": 2}, {"sum": 7.0, "length": 2}]}
    columns, is_rows = rest.predict_inputs({"inputs": {"x": [[1, 2]], "s": ["abc"]}}, model)
    assert rest.predict_json(model.predict_arrays("", columns), is_rows) == {"outputs": {"sum": [3.0], "length": [3]}}
    with pytest.raises(ServingError, match="exactly one is required"):
        rest.predict_inputs({"instances": [], "inputs": {}}, model)
    with pytest.raises(ServingError, match="naming the inputs"):
        rest.predict_inputs({"instances": [[1, 2]]}, model)  # two inputs: instances must name them
    with pytest.raises(ServingError, match="expected a number"):
        rest.predict_inputs({"inputs": {"x": [["a", "b"]], "s": ["x"]}}, model)


def test_json_examples_follow_tf_servings_typing():
    example = rest.json_example({"i": 3, "f": 2.5, "whole_float": 12.0, "s": "Cash", "b": {"b64": "AAE="},
                                 "many": [1, 2.5]})
    feature = example.features.feature
    assert feature["i"].int64_list.value == [3]
    assert feature["f"].float_list.value == [2.5] and feature["whole_float"].float_list.value == [12.0]
    assert feature["s"].bytes_list.value == [b"Cash"] and feature["b"].bytes_list.value == [b"\x00\x01"]
    assert list(feature["many"].float_list.value) == [1.0, 2.5]
    for bad in ({"m": [1, "a"]}, {"t": True}, {"e": []}, {"n": None}):
        with pytest.raises(ServingError):
            rest.json_example(bad)


def test_regress_with_context_and_classify_needs_classes_or_scores(model):
    examples = rest.serialized_json_examples({"context": {"k": 3}, "examples": [{"v": 1.5}, {"v": 2.0, "k": 10}]})
    assert model.regress_serialized("regress", examples) == [4.5, 20.0]  # the example's own k wins
    request = regression_pb2.RegressionRequest(model_spec={"name": "tiny", "signature_name": "regress"})
    request.input.example_list.examples.add().CopyFrom(rest.json_example({"v": 2.0}))
    response = model.regress(request)
    assert [r.value for r in response.result.regressions] == [2.0] and response.model_spec.version.value == 7
    with pytest.raises(ServingError, match="Input is empty"):
        model.regress(regression_pb2.RegressionRequest(model_spec={"name": "tiny", "signature_name": "regress"}))
    with pytest.raises(ServingError, match="Expected one input Tensor"):
        model.classify_serialized("serving_default", examples)  # two inputs: not a classifier
    with pytest.raises(ServingError, match="classes or scores"):
        model.classify_serialized("regress", examples)


def test_method_names_are_checked_only_when_asked(model):
    checking = LoadedModel("tiny", model.path, 7, method_name_check=True)
    examples = rest.serialized_json_examples({"examples": [{"v": 1.0}]})
    with pytest.raises(ServingError, match="method_name"):  # TF2 exports every signature as predict
        checking.regress_serialized("regress", examples)
    assert model.regress_serialized("regress", examples) == [1.0]
