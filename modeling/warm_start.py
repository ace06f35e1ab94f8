"""Warm start: a new model begins from the weights of the last blessed one.

The weights are saved by Keras as a file inside the exported SavedModel's assets.extra
(`warm_start/weights.h5`, with `inputs.json`: what those weights were trained on), so they
travel wherever the model goes: the Trainer's artifact (the local baseline), the pushed
version in the serving directory (Kubeflow's). A SavedModel alone cannot give them back to
a Keras model, and Keras 3 does not load a SavedModel's variables at all.

Weights only mean the same thing when the model reads the same inputs the same way. A new
window recomputes the transform: each vocabulary is re-ranked by frequency (same token,
another id), and each quantile feature gets new bucket boundaries (same id, another range).
So the head's rows for a vocabulary feature are remapped token by token (a new token starts
from its fresh initial weights), and a start is refused, in one line saying why, when the
features, their roles, the task or the layers differ, or a bucket boundary moved by more
than `max_shift` of its feature's range.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from modeling.network import build_keras_model
from modeling.roles import Plan

WARM_DIR = os.path.join("assets.extra", "warm_start")
WEIGHTS, INPUTS = "weights.h5", "inputs.json"
STATUS = "warm_start.json"  # in the Trainer's model_run output: whether and from what it started
VOCABULARY_ROLES = ("integer_categorical", "string_vocabulary")


def bucket_boundaries(transform_output_dir: str, plan: Plan) -> dict[str, list[float]] | None:
    """{feature key: boundaries} of the plan's bucketized features, read from the transform
    graph: tf.Transform (TF2) captures each analyzer's result as a constant of the saved
    transform_fn's graph, a [1, buckets - 1] float tensor for each quantile analyzer, in the
    order preprocessing_fn made them. None when the graph does not show exactly one per feature."""
    from tensorflow.core.protobuf import saved_model_pb2

    keys = [f.key for f in plan.features if f.role == "bucketized"]
    if not keys:
        return {}
    path = os.path.join(transform_output_dir, "transform_fn", "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved.ParseFromString(f.read())
    found = []
    for node in saved.meta_graphs[0].graph_def.node:
        if node.op != "Const" or node.attr["dtype"].type != tf.float32.as_datatype_enum:
            continue
        dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
        if dims == [1, plan.quantile_buckets - 1]:
            suffix = node.name.rpartition("_")[2]
            found.append(
                (
                    int(suffix) if suffix.isdigit() else 0,
                    node.name,
                    tf.make_ndarray(node.attr["value"].tensor).reshape(-1).tolist(),
                )
            )
    if len(found) != len(keys):
        return None
    return {key: values for key, (_, _, values) in zip(keys, sorted(found))}


def inputs_of(plan: Plan, tf_transform_output, sizes: dict[str, int], hidden_units) -> dict:
    """What a model's weights mean: its plan, layers, vocabularies and bucket boundaries."""
    plan_data = json.loads(plan.to_json())
    plan_data.pop("notes", None)
    vocabularies = {
        f.key: [t.decode("utf-8", "backslashreplace") for t in tf_transform_output.vocabulary_by_name(f"vocab_{f.key}")]
        for f in plan.features
        if f.role in VOCABULARY_ROLES
    }
    return {
        "plan": plan_data,
        "hidden_units": list(hidden_units),
        "sizes": [[k, n] for k, n in sizes.items()],
        "vocabularies": vocabularies,
        "boundaries": bucket_boundaries(os.path.dirname(tf_transform_output.transform_savedmodel_dir), plan),
    }


def save(model: tf.keras.Model, serving_model_dir: str, inputs: dict) -> None:
    out = os.path.join(serving_model_dir, WARM_DIR)
    tf.io.gfile.makedirs(out)
    local = os.path.join(out, WEIGHTS)
    if "://" in out:  # h5py writes local files only
        local = os.path.join(tempfile.mkdtemp(), WEIGHTS)
    model.save_weights(local)
    if local != os.path.join(out, WEIGHTS):
        tf.io.gfile.copy(local, os.path.join(out, WEIGHTS), overwrite=True)
    with tf.io.gfile.GFile(os.path.join(out, INPUTS), "w") as f:
        json.dump(inputs, f)


def _shape(plan: dict) -> list[tuple]:
    return [(f["name"], f["role"], f["optional"]) for f in plan["features"]]


def read_status(model_run_dir: str) -> dict | None:
    """What the Trainer wrote about its start ({warm_started, detail, steps}), if anything."""
    path = os.path.join(model_run_dir, STATUS)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def refusal(old: dict, new: dict, max_shift: float) -> str | None:
    """Why weights trained on `old` inputs cannot start a model on `new` ones; None if they can."""
    old_plan, new_plan = old["plan"], new["plan"]
    for name in ("task", "label", "classes", "oov_buckets", "quantile_buckets"):
        if old_plan.get(name) != new_plan.get(name):
            return f"the {name} changed ({old_plan.get(name)!r} -> {new_plan.get(name)!r})"
    if _shape(old_plan) != _shape(new_plan):
        return "the features or their roles changed"
    if old["hidden_units"] != new["hidden_units"]:
        return f"hidden_units changed ({old['hidden_units']} -> {new['hidden_units']})"
    if old.get("boundaries") is None or new.get("boundaries") is None:
        return "the bucket boundaries cannot be read from the transform graph"
    for key, bounds in new["boundaries"].items():
        before = np.asarray(old["boundaries"][key])
        span = float(before.max() - before.min()) or 1.0
        moved = float(np.abs(np.asarray(bounds) - before).max()) / span
        if moved > max_shift:
            return (
                f"the bucket boundaries of {key} moved by {moved:.0%} of their range "
                f"(more than warm_start_max_shift {max_shift:g})"
            )
    return None


def load(
    model: tf.keras.Model, base_model_dir: str | None, plan: Plan, new_inputs: dict, max_shift: float, **build_args
) -> tuple[bool, str]:
    """Starts `model` from the weights saved beside the SavedModel in `base_model_dir`.
    Returns (warm started, why or from what)."""
    where = os.path.join(base_model_dir or "", WARM_DIR)
    if not base_model_dir or not tf.io.gfile.exists(os.path.join(where, INPUTS)):
        return False, (
            "no blessed model yet"
            if not base_model_dir or not tf.io.gfile.exists(base_model_dir)
            else f"the last blessed model {base_model_dir} has no saved weights"
        )
    with tf.io.gfile.GFile(os.path.join(where, INPUTS)) as f:
        old_inputs = json.load(f)
    why = refusal(old_inputs, new_inputs, max_shift)
    if why:
        return False, f"refused: {why} since the last blessed model {base_model_dir}"
    old_sizes = dict((k, n) for k, n in old_inputs["sizes"])
    old_model = build_keras_model(plan, old_sizes, **build_args)
    local = os.path.join(where, WEIGHTS)
    if "://" in local:
        copy = os.path.join(tempfile.mkdtemp(), WEIGHTS)
        tf.io.gfile.copy(local, copy, overwrite=True)
        local = copy
    old_model.load_weights(local)
    new_tokens = transfer(old_model, model, old_inputs, new_inputs)
    detail = f"; {new_tokens} new vocabulary values start fresh" if new_tokens else ""
    return True, f"from {base_model_dir}{detail}"


def transfer(old_model: tf.keras.Model, model: tf.keras.Model, old_inputs: dict, new_inputs: dict) -> int:
    """Copies every weight; each category's wide weights (the Embedding `wide_<key>` of
    modeling/network.py, a row per id) follow their vocabulary values. Returns how many
    vocabulary values the old model never saw (their rows keep the new model's start)."""
    unseen = 0
    for old_layer, layer in zip(old_model.layers, model.layers):
        if not layer.weights:
            continue
        if not layer.name.startswith("wide_"):
            layer.set_weights(old_layer.get_weights())
            continue
        key = layer.name[len("wide_") :]
        (table,), (old_table,) = layer.get_weights(), old_layer.get_weights()
        if key in new_inputs["vocabularies"]:
            old_vocab = {t: i for i, t in enumerate(old_inputs["vocabularies"][key])}
            vocab = new_inputs["vocabularies"][key]
            for i, token in enumerate(vocab):
                if token in old_vocab:
                    table[i] = old_table[old_vocab[token]]
                else:
                    unseen += 1
            oov = table.shape[0] - len(vocab)  # the out-of-vocabulary ids follow the vocabulary
            table[len(vocab) :] = old_table[old_table.shape[0] - oov :]
        else:
            table[:] = old_table
        layer.set_weights([table])
    return unseen
