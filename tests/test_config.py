"""Configuration: precedence, and refusal of bad values before anything runs."""

from __future__ import annotations

import pytest
import tomllib

from pipeline.config import ConfigError, PipelineConfig, load_config, parse_overrides
from tests.taxi_sample import PROJECT_DIR, TAXI_TOML


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_then_file_then_command_line(tmp_path):
    cfg = load_config(
        write(tmp_path, 'label = "big_tipper"\nhook = "modeling.taxi_hook"\ntrain_steps = 50\neval_steps = 7\n'),
        parse_overrides(["train_steps=20", "slicing_features=payment_type,company"]),
        base_dir=PROJECT_DIR,
    )
    assert cfg.train_steps == 20  # command line beats file
    assert cfg.eval_steps == 7  # file beats default
    assert cfg.per_replica_batch_size == PipelineConfig().per_replica_batch_size
    assert cfg.slicing_features == ["payment_type", "company"]


def test_relative_paths_resolve_against_base_dir(tmp_path):
    cfg = load_config(TAXI_TOML, overrides={"serving_dir": "out/serving"}, base_dir=PROJECT_DIR)
    assert cfg.path("serving_dir") == str(PROJECT_DIR / "out" / "serving")
    assert (
        load_config(TAXI_TOML, overrides={"pipeline_root": "gs://b/root"}, base_dir=PROJECT_DIR).path("pipeline_root")
        == "gs://b/root"
    )


def test_shipped_config_is_valid():
    """Outside its [dataset] table, configs/local.toml documents the defaults."""
    shipped = PROJECT_DIR / "configs" / "local.toml"
    with open(shipped, "rb") as f:
        dataset = tomllib.load(f)["dataset"]
    cfg = load_config(shipped, base_dir=PROJECT_DIR)
    assert cfg == load_config(overrides=dataset, base_dir=PROJECT_DIR)
    assert (cfg.label, cfg.hook, cfg.model_name) == ("big_tipper", "modeling.taxi_hook", "taxi_tips")


def test_dataset_settings_do_not_leak_into_another_data_set(tmp_path):
    """Pointing input_base (or schema_path, or label) elsewhere drops the bundled data's
    label, hook, roles, slices and gates, and says so; the task's defaults apply."""
    shipped = PROJECT_DIR / "configs" / "local.toml"
    cfg = load_config(
        shipped, {"input_base": "data/taxi", "label": "company", "task": "multiclass"}, base_dir=PROJECT_DIR
    )
    assert (cfg.hook, cfg.slicing_features, cfg.thresholds, cfg.model_name) == ("", [], {}, "model")
    assert len(cfg.notes) == 1 and "label is set on the command line" in cfg.notes[0]
    for dropped in ("hook", "slicing_features", "thresholds", "exclude_features"):
        assert dropped in cfg.notes[0]
    # The same input_base as the table's keeps it.
    same = load_config(shipped, {"input_base": "data/taxi"}, base_dir=PROJECT_DIR)
    assert same.hook == "modeling.taxi_hook" and not same.notes


def test_gates_are_checked_against_the_task():
    with pytest.raises(ConfigError, match=r"^thresholds.r2: not a metric of a binary model"):
        load_config(TAXI_TOML, {"thresholds": "{r2 = {min = 0.1}}"}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^max_drop.auc: expected a number >= 0"):
        load_config(TAXI_TOML, {"max_drop": "{auc = -1}"}, base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match=r"^thresholds.auc: min 0.9 is above max 0.5"):
        load_config(TAXI_TOML, {"thresholds": "{auc = {min = 0.9, max = 0.5}}"}, base_dir=PROJECT_DIR)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"train_steps": "-5"}, "train_steps"),
        ({"eval_steps": "0"}, "eval_steps"),
        ({"cpu_replicas": "two"}, "cpu_replicas"),
        ({"thresholds": "{auc = {above = 1}}"}, "thresholds.auc"),
        ({"max_drop": "{nope = 0.1}"}, "max_drop.nope"),
        ({"label": "no_such_feature", "hook": ""}, "label"),
        ({"task": "ranking"}, "task"),
        ({"feature_roles": '{company = "numeric"}'}, "feature_roles.company"),
        ({"exclude_features": '["ghost"]'}, "exclude_features"),
        ({"hook": "no_such.module"}, "hook"),
        ({"vocab_size": "0"}, "vocab_size"),
        ({"fairness_thresholds": "[0.5, 1.5]"}, "fairness_thresholds"),
        ({"slicing_features": '["no_such_feature"]'}, "slicing_features"),
        ({"slicing_crosses": '[["payment_type", "nope"]]'}, "slicing_features"),
        ({"schema_path": "schemas/missing.pbtxt"}, "schema_path"),
        ({"split_ratio": "{train = 2}"}, "split_ratio"),
        ({"split_patterns": '{train = "../x/*", eval = "e/*"}'}, "split_patterns"),
        ({"model_name": "Bad Name!"}, "model_name"),
        ({"model_name": "../../etc"}, "model_name"),  # would write outside serving_dir
        ({"pipeline_name": "../escape"}, "pipeline_name"),
        ({"keep_versions": "0"}, "keep_versions"),
        ({"infra_validator_runner": "docker"}, "infra_validator_runner"),
        ({"tf_serving_image": "tensorflow/serving"}, "tf_serving_image"),  # no tag or digest
        ({"tf_serving_image": "registry:5000/serving"}, "tf_serving_image"),  # that colon is a port
        ({"infra_validation_tries": "0"}, "infra_validation_tries"),
        ({"serving_rest_port": "70000"}, "serving_rest_port"),
        ({"no_such_setting": "1"}, "no_such_setting"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        load_config(TAXI_TOML, overrides=overrides, base_dir=PROJECT_DIR)
    assert str(err.value).startswith(field), str(err.value)


def test_bad_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="train_steps"):
        load_config(write(tmp_path, 'train_steps = "many"\n'), base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", base_dir=PROJECT_DIR)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["train_steps"])
