"""Role and task inference from a schema (modeling/roles.py): what a new data set gets
without any setting but its label, and the one-line errors when a setting cannot work."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from modeling.roles import Plan, PlanError, make_plan, transformed_key

# The shape of what `tfdv.infer_schema(stats, infer_feature_shape=True)` writes: required
# features with a shape, optional ones with a value_count, strings with a domain by name,
# integers without a domain.
SCHEMA = """
feature { name: "trip miles" type: FLOAT presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "zone.id" type: INT int_domain { min: 1 max: 9 is_categorical: true }
          presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "3rd-party" type: BYTES domain: "3rd-party" presence { min_count: 1 } value_count { min: 1 max: 1 } }
feature { name: "count" type: INT presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "tags" type: BYTES presence { min_count: 1 } value_count { min: 1 max: 5 } }
feature { name: "secret" type: FLOAT not_in_environment: "SERVING" presence { min_count: 1 } value_count { min: 1 max: 1 } }
feature { name: "answer" type: BYTES domain: "answer" presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "kind" type: BYTES domain: "kind" presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "y" type: INT presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "price" type: FLOAT presence { min_fraction: 1 min_count: 1 } shape { dim { size: 1 } } }
string_domain { name: "3rd-party" value: "a" value: "b" }
string_domain { name: "answer" value: "no" value: "yes" }
string_domain { name: "kind" value: "cat" value: "dog" value: "emu" }
"""


@pytest.fixture
def schema():
    return text_format.Parse(SCHEMA, schema_pb2.Schema())


def roles(plan: Plan) -> dict[str, str]:
    return {f.name: f.role for f in plan.features}


def test_binary_string_label_and_roles_from_the_schema(schema):
    plan = make_plan(schema, label="answer")
    assert plan.task == "binary"
    assert plan.positive_class == "yes" and plan.classes == ["no", "yes"]
    assert roles(plan) == {
        "trip miles": "numeric",
        "zone.id": "integer_categorical",
        "3rd-party": "string_vocabulary",
        "count": "numeric",
        "kind": "string_vocabulary",
        "y": "numeric",
        "price": "numeric",
    }
    assert plan.excluded["answer"] == "the label"
    assert "SERVING" in plan.excluded["secret"] and "several values" in plan.excluded["tags"]
    optional = {f.name for f in plan.features if f.optional}
    assert optional == {"3rd-party"}
    assert any("task: binary" in n and "domain has 2 values" in n for n in plan.notes)


def test_multiclass_from_a_string_domain_keeps_its_order(schema):
    plan = make_plan(schema, label="kind")
    assert (plan.task, plan.classes) == ("multiclass", ["cat", "dog", "emu"])
    assert plan.output_key == "probabilities"


@pytest.mark.parametrize(
    "sample, task, classes",
    [
        ([0, 1, 1, 0, 1], "binary", ["0", "1"]),
        ([2, 0, 1, 2, 0], "multiclass", ["0", "1", "2"]),
        (list(range(100)), "regression", []),
    ],
)
def test_integer_label_without_a_domain_is_decided_from_a_sample(schema, sample, task, classes):
    plan = make_plan(schema, label="y", label_sample=lambda: sample)
    assert (plan.task, plan.classes) == (task, classes)
    assert any("sample of the data" in n for n in plan.notes)


def test_integer_label_without_a_domain_and_no_data_asks_for_the_task(schema):
    with pytest.raises(PlanError, match=r"^task: .*no domain"):
        make_plan(schema, label="y")
    assert make_plan(schema, label="y", task="regression").task == "regression"


def test_float_label_is_regression_with_predictions(schema):
    plan = make_plan(schema, label="price", label_sample=lambda: [1.5, 3.0, 2.2])
    assert plan.task == "regression" and plan.output_key == "predictions"


def test_one_class_against_the_rest(schema):
    plan = make_plan(schema, label="kind", task="binary", positive_class="dog")
    assert (plan.task, plan.classes, plan.positive_class) == ("binary", ["not dog", "dog"], "dog")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(label=""), r"^label: name the feature"),
        (dict(label="nope"), r"^label: 'nope' is not a feature"),
        (dict(label="answer", task="ranking"), r"^task: one of"),
        (dict(label="answer", positive_class="maybe"), r"^positive_class: 'maybe' is not a value"),
        (dict(label="kind", task="binary"), r"^positive_class: label 'kind' has 3 values"),
        (dict(label="answer", task="regression"), r"^task: regression needs a numeric label"),
        (
            dict(label="price", task="multiclass"),
            r"^task: multiclass needs the label's classes|^task: multiclass needs an int",
        ),
        (dict(label="answer", features=["ghost"]), r"^features: 'ghost' is not a feature"),
        (dict(label="answer", exclude=["ghost"]), r"^exclude_features: 'ghost'"),
        (dict(label="answer", roles={"count": "fancy"}), r"^feature_roles.count: one of"),
        (dict(label="answer", roles={"kind": "numeric"}), r"^feature_roles.kind: a string feature"),
        (dict(label="answer", hook="no.such.module"), r"^hook: cannot import"),
    ],
)
def test_errors_name_the_setting(schema, kwargs, message):
    with pytest.raises(PlanError, match=message):
        make_plan(schema, **kwargs)


def test_configured_features_exclusions_and_roles(schema):
    plan = make_plan(
        schema,
        label="answer",
        features=["trip miles", "count", "kind"],
        exclude=["kind"],
        roles={"count": "integer_categorical", "trip miles": "bucketized"},
    )
    assert roles(plan) == {"trip miles": "bucketized", "count": "integer_categorical"}
    assert plan.excluded["kind"] == "excluded by exclude_features"


def test_transformed_keys_are_valid_names_and_unique():
    taken: set[str] = set()
    keys = [transformed_key(n, taken) for n in ("trip miles", "trip-miles", "3rd", "a.b", "", "ünï")]
    assert keys == ["trip_miles_xf", "trip_miles_2_xf", "f_3rd_xf", "a_b_xf", "feature_xf", "n_xf"]


def test_the_taxi_hook_makes_a_binary_label_from_two_columns():
    from components.schema import load_schema
    from tests.taxi_sample import SCHEMA_PATH

    plan = make_plan(load_schema(str(SCHEMA_PATH)), label="big_tipper", hook="modeling.taxi_hook")
    assert (plan.task, plan.label_dtype) == ("binary", "hook")
    assert "tips" in plan.excluded and "tips" in plan.serving_excluded
    assert "fare" in roles(plan)  # a source of the label may still be a feature ...
    assert plan.serving_excluded == ["tips"]  # ... only the label-only column is not sent


def test_plan_round_trips_through_json(schema):
    plan = make_plan(schema, label="kind")
    assert Plan.from_json(plan.to_json()) == plan
