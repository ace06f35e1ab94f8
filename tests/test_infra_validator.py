"""InfraValidator: the config picks the runner; in the DAG it sits between Evaluator and
Pusher; and its executor (TFX's, with the loopback runner) on a model with a broken
serving signature: it is not infra-blessed, and the Pusher does not push it.

The good model's path (infra-blessed, pushed with its warm-up requests) is the pipeline's
own run: see test_e2e_pipeline.py and test_serving_api.py.
"""

from __future__ import annotations

import glob
import os

import pytest
import tensorflow as tf
from tfx.proto import infra_validator_pb2, pusher_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as keys
from tfx.utils import json_utils, proto_utils

from components import infra_validator, serving_pusher
from pipeline import infra_validation
from pipeline.config import load_config
from tests.taxi_sample import PROJECT_DIR, TAXI_TOML


@pytest.mark.parametrize(
    "runner, platform", [("local", None), ("local_docker", "local_docker"), ("kubernetes", "kubernetes")]
)
def test_the_config_picks_the_model_server_runner(runner, platform):
    cfg = load_config(TAXI_TOML, overrides={"infra_validator_runner": runner}, base_dir=PROJECT_DIR)
    spec = infra_validation.serving_spec(cfg)
    assert spec.WhichOneof("serving_platform") == platform  # None: the loopback runner
    assert (spec.tensorflow_serving.image_name, list(spec.tensorflow_serving.tags)) == (
        "tensorflow/serving",
        ["2.20.0"],
    )
    assert spec.model_name == "taxi_tips"
    pinned = load_config(
        TAXI_TOML, overrides={"tf_serving_image": "reg.example:5000/tfs@sha256:abc"}, base_dir=PROJECT_DIR
    )
    tfs = infra_validation.serving_spec(pinned).tensorflow_serving
    assert (tfs.image_name, list(tfs.tags), list(tfs.digests)) == ("reg.example:5000/tfs", [], ["sha256:abc"])


def test_infra_validator_runs_beside_the_evaluator_and_before_the_pusher():
    from pipeline.dag import create_pipeline

    pipeline = create_pipeline(load_config(TAXI_TOML, base_dir=PROJECT_DIR))
    nodes = {c.id: c for c in pipeline.components}
    validator, pusher = nodes["InfraValidator"], nodes["Pusher"]
    assert type(validator).EXECUTOR_SPEC.executor_class is infra_validator.Executor
    # Only what it consumes: a concurrent runner starts it beside the Evaluator.
    assert {n.id for n in validator.upstream_nodes} == {"Trainer", "ImportExampleGen"}
    assert {"Evaluator", "InfraValidator"} <= {n.id for n in pusher.upstream_nodes}
    assert pusher.inputs["infra_blessing"].producer_component_id == "InfraValidator"
    request = proto_utils.json_to_proto(validator.exec_properties["request_spec"], infra_validator_pb2.RequestSpec())
    assert (
        request.make_warmup
        and list(request.tensorflow_serving.signature_names) == ["serving_default", "classification"]
        and request.split_name == "eval"
    )


class BrokenSignatures(tf.Module):
    """Loads fine and has the signatures clients call, but every request fails: it parses a
    required feature no client sends (the kind of mistake a serving_fn refactor makes)."""

    def _parse(self, examples):
        return tf.io.parse_example(examples, {"no_such_feature": tf.io.FixedLenFeature([1], tf.float32)})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        return {"probabilities": self._parse(examples)["no_such_feature"]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        p = self._parse(inputs)["no_such_feature"]
        return {
            "classes": tf.tile(tf.constant([[b"0", b"1"]]), [tf.shape(p)[0], 1]),
            "scores": tf.concat([1 - p, p], axis=1),
        }


def examples_artifact(first_run) -> standard_artifacts.Examples:
    workdir = first_run[0]
    uri = sorted(glob.glob(str(workdir / "root" / "ImportExampleGen" / "examples" / "*")))[0]
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    return examples


def run_infra_validator(tmp_path, model_uri: str, examples) -> standard_artifacts.InfraBlessing:
    cfg = load_config(TAXI_TOML, base_dir=PROJECT_DIR, check_files=False)
    model = standard_artifacts.Model()
    model.uri = model_uri
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    exec_properties = {  # what the pipeline's InfraValidator gets, but one try
        keys.SERVING_SPEC_KEY: proto_utils.proto_to_json(infra_validation.serving_spec(cfg)),
        keys.REQUEST_SPEC_KEY: proto_utils.proto_to_json(infra_validation.request_spec(cfg)),
        keys.VALIDATION_SPEC_KEY: proto_utils.proto_to_json(
            infra_validator_pb2.ValidationSpec(max_loading_time_seconds=120, num_tries=1)
        ),
    }
    executor = infra_validator.Executor(infra_validator.Executor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1"))
    executor.Do(
        {keys.MODEL_KEY: [model], keys.EXAMPLES_KEY: [examples]}, {keys.BLESSING_KEY: [blessing]}, exec_properties
    )
    return blessing


@pytest.mark.e2e
def test_a_model_with_a_broken_signature_is_not_infra_blessed_nor_pushed(first_run, tmp_path, caplog):
    module = BrokenSignatures()
    model_uri = tmp_path / "model"
    tf.saved_model.save(
        module,
        str(model_uri / "Format-Serving"),
        signatures={"serving_default": module.serve, "classification": module.classify},
    )

    caplog.set_level("INFO")
    blessing = run_infra_validator(tmp_path, str(model_uri), examples_artifact(first_run))
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"))
    assert not blessing.get_int_custom_property("has_model")  # no warm-up copy of a failed model
    log = caplog.text
    assert "AVAILABLE after" in log  # it loaded (the server's log, as the runner reports it) ...
    assert "no_such_feature" in log  # ... and the server's answer to TFX's Predict was the parse error
    assert "NOT infra-blessed" in log

    # The Pusher, given the Evaluator's blessing but this infra blessing, pushes nothing.
    model = standard_artifacts.Model()
    model.uri = str(model_uri)
    model_blessing = standard_artifacts.ModelBlessing()
    model_blessing.uri = str(tmp_path / "model_blessing")
    model_blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    serving_dir = tmp_path / "serving" / "taxi_tips"
    serving_pusher.Executor().Do(
        {keys.MODEL_KEY: [model], keys.MODEL_BLESSING_KEY: [model_blessing], keys.INFRA_BLESSING_KEY: [blessing]},
        {keys.PUSHED_MODEL_KEY: [pushed]},
        {
            keys.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(
                pusher_pb2.PushDestination(
                    filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_dir))
                )
            ),
            keys.CUSTOM_CONFIG_KEY: json_utils.dumps({serving_pusher.KEEP_VERSIONS_KEY: 5}),
        },
    )
    assert pushed.get_int_custom_property("pushed") == 0
    assert not serving_dir.exists()


class ClassifyInputNamedExamples(tf.Module):
    """Answers every request, but its classification signature names its input "examples":
    TF Serving's Classify refuses it (classifier.cc:194-199), so it must not be blessed."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        return {"probabilities": tf.fill([tf.shape(examples)[0], 1], 0.5)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def classify(self, examples):
        n = tf.shape(examples)[0]
        return {"classes": tf.tile(tf.constant([[b"0", b"1"]]), [n, 1]), "scores": tf.fill([n, 2], 0.5)}


@pytest.mark.e2e
def test_a_model_tf_serving_cannot_classify_is_not_infra_blessed(first_run, tmp_path, caplog):
    module = ClassifyInputNamedExamples()
    model_uri = tmp_path / "model"
    tf.saved_model.save(
        module,
        str(model_uri / "Format-Serving"),
        signatures={"serving_default": module.serve, "classification": module.classify},
    )
    caplog.set_level("INFO")
    blessing = run_infra_validator(tmp_path, str(model_uri), examples_artifact(first_run))
    assert blessing.get_int_custom_property("blessed") == 0
    assert 'signature "classification" (classify): No classification inputs found' in caplog.text
    assert 'rename the input to "inputs"' in caplog.text
