"""Warm start's units: a real Keras weights file saved and loaded back, each category's wide
weights following their vocabulary values, and the refusals (modeling/warm_start.py)."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.roles import Feature, Plan

HIDDEN = (8, 4)


def _plan() -> Plan:
    return Plan(
        task="binary",
        label="y",
        label_dtype="int",
        classes=["0", "1"],
        positive_class="1",
        features=[
            Feature("x", "x_xf", "numeric", "float", False),
            Feature("s", "s_xf", "string_vocabulary", "string", False),
            Feature("b", "b_xf", "bucketized", "float", False),
        ],
        quantile_buckets=4,
        oov_buckets=1,
    )


def _inputs(plan: Plan, vocab: list[str], boundaries: list[float]) -> dict:
    import json

    data = json.loads(plan.to_json())
    data.pop("notes")
    return {
        "plan": data,
        "hidden_units": list(HIDDEN),
        "sizes": [["s_xf", len(vocab) + 1], ["b_xf", 5]],
        "vocabularies": {"s_xf": vocab},
        "boundaries": {"b_xf": boundaries},
    }


def test_weights_come_back_with_each_vocabulary_row_following_its_value(tmp_path):
    from modeling import warm_start
    from modeling.network import build_keras_model

    plan = _plan()
    old_inputs = _inputs(plan, ["a", "b", "c"], [1.0, 2.0, 3.0])
    old = build_keras_model(plan, dict(old_inputs["sizes"]), hidden_units=HIDDEN)
    rng = np.random.default_rng(0)  # as if trained: every weight distinct (the wide part starts at 0)
    for layer in old.layers:
        layer.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    warm_start.save(old, str(tmp_path), old_inputs)
    assert (tmp_path / "assets.extra" / "warm_start" / "weights.h5").stat().st_size > 0

    # The next window: "c" became the most frequent, "d" is new, boundaries moved a little.
    new_inputs = _inputs(plan, ["c", "a", "d", "b"], [1.05, 2.0, 3.1])
    model = build_keras_model(plan, dict(new_inputs["sizes"]), hidden_units=HIDDEN)
    fresh = model.get_layer("wide_s_xf").get_weights()[0].copy()
    warm, detail = warm_start.load(model, str(tmp_path), plan, new_inputs, 0.1, hidden_units=HIDDEN)
    assert warm and detail == f"from {tmp_path}; 1 new vocabulary values start fresh"

    old_table, table = old.get_layer("wide_s_xf").get_weights()[0], model.get_layer("wide_s_xf").get_weights()[0]
    old_row = {t: old_table[i] for i, t in enumerate(["a", "b", "c"])}
    for row, token in zip([0, 1, 3], ["c", "a", "b"]):
        np.testing.assert_array_equal(table[row], old_row[token])
    np.testing.assert_array_equal(table[2], fresh[2])  # "d": the new model's start
    np.testing.assert_array_equal(table[4], old_table[3])  # the out-of-vocabulary id
    for old_layer, layer in zip(old.layers, model.layers):
        if layer.name != "wide_s_xf":  # the buckets' weights and the deep part, as they were
            for a, b in zip(old_layer.get_weights(), layer.get_weights()):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda i: i["boundaries"].update(b_xf=[1.0, 2.5, 3.0]),
            "the bucket boundaries of b_xf moved by 25% of their range",
        ),
        (lambda i: i.update(hidden_units=[16, 4]), "hidden_units changed ([8, 4] -> [16, 4])"),
        (lambda i: i["plan"]["features"][1].update(role="integer_categorical"), "the features or their roles changed"),
        (lambda i: i["plan"].update(task="regression"), "the task changed ('binary' -> 'regression')"),
        (lambda i: i.update(boundaries=None), "the bucket boundaries cannot be read"),
    ],
)
def test_changed_inputs_refuse_the_warm_start_saying_why(change, reason):
    from modeling.warm_start import refusal

    old, new = _inputs(_plan(), ["a"], [1.0, 2.0, 3.0]), _inputs(_plan(), ["a"], [1.0, 2.0, 3.0])
    assert refusal(old, new, 0.1) is None
    change(new)
    assert refusal(old, new, 0.1).startswith(reason)


def test_no_saved_weights_is_a_cold_start(tmp_path):
    from modeling import warm_start
    from modeling.network import build_keras_model

    plan = _plan()
    inputs = _inputs(plan, ["a"], [1.0, 2.0, 3.0])
    model = build_keras_model(plan, dict(inputs["sizes"]), hidden_units=HIDDEN)
    assert warm_start.load(model, None, plan, inputs, 0.1) == (False, "no blessed model yet")
    assert warm_start.load(model, str(tmp_path), plan, inputs, 0.1) == (
        False,
        f"the last blessed model {tmp_path} has no saved weights",
    )
