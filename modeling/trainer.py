"""The Trainer's `run_fn`: Keras under MirroredStrategy, exported for serving and TFMA."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public.tfxio import TensorFlowDatasetOptions

from modeling import devices, warm_start
from modeling.network import build_keras_model, category_sizes
from modeling.preprocessing import PLAN_KEY
from modeling.roles import LABEL_KEY, Plan
from modeling.signatures import serving_signatures

LOG = logging.getLogger(__name__)
# The local runner shows the "pipeline" loggers on the console: the replica count is
# the one training detail a user should see without opening the log file.
PROGRESS = logging.getLogger("pipeline.trainer")
# ExampleGen keeps the input's order (no global shuffle): the Trainer shuffles, from a wide buffer.
SHUFFLE_BUFFER = 50_000


def _dataset(
    fn_args: FnArgs, files, tf_transform_output, batch_size: int, plan: Plan, shuffle: bool = False
) -> tf.data.Dataset:
    """Raw examples, transformed as they are read, by the graph the Transform component
    analysed. Transform does not write a transformed copy of the data set: training reads
    only train_steps x batch rows of it, and at 1.5M rows writing that copy cost more
    than the whole Trainer."""
    transform = tf_transform_output.transform_features_layer()

    def features_and_label(raw):
        transformed = transform(raw)
        label = transformed.pop(LABEL_KEY)
        if plan.task == "multiclass":  # a class the plan does not know (-1) is not trained on
            known = label >= 0
            transformed = {k: tf.boolean_mask(v, known) for k, v in transformed.items()}
            label = tf.boolean_mask(label, known)
        return transformed, label

    options = TensorFlowDatasetOptions(batch_size=batch_size, shuffle=shuffle, shuffle_buffer_size=SHUFFLE_BUFFER)
    return (
        fn_args.data_accessor.tf_dataset_factory(
            files,
            options,
            tf_transform_output.raw_metadata.schema,
        )
        .map(features_and_label, num_parallel_calls=tf.data.AUTOTUNE)
        .repeat()
    )


def _label_scale(dataset: tf.data.Dataset, batches: int = 50) -> tuple[float, float]:
    """Mean and spread of a regression label from the first training batches, so the
    model's linear unit starts at the right place and scale."""
    labels = np.concatenate([y.numpy().reshape(-1) for _, y in dataset.take(batches)])
    return float(labels.mean()), float(labels.std() or 1.0)


def run_fn(fn_args: FnArgs) -> None:
    cfg = fn_args.custom_config or {}
    plan = Plan.from_json(cfg[PLAN_KEY])
    devices.split_cpu(int(cfg.get("cpu_replicas", 1)))
    strategy = devices.mirrored_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = int(cfg.get("per_replica_batch_size", 64)) * replicas
    PROGRESS.info(
        "MirroredStrategy: %d replica(s) on %s; global batch %d",
        replicas,
        ", ".join(strategy.extended.worker_devices),
        global_batch,
    )

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, global_batch, plan, shuffle=True)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, global_batch, plan)
    mean, std = _label_scale(train) if plan.task == "regression" else (0.0, 1.0)

    sizes = category_sizes(plan, tf_transform_output)
    build_args = dict(
        hidden_units=tuple(cfg.get("hidden_units", (64, 32, 16))),
        learning_rate=float(cfg.get("learning_rate", 1e-3)),
        label_mean=mean,
        label_std=std,
    )
    inputs = warm_start.inputs_of(plan, tf_transform_output, sizes, build_args["hidden_units"])
    with strategy.scope():
        model = build_keras_model(plan, sizes, **build_args)
        warm, why = False, "warm_start is off"
        if cfg.get("warm_start"):
            warm, why = warm_start.load(
                model, fn_args.base_model, plan, inputs, float(cfg.get("warm_start_max_shift", 0.25)), **build_args
            )
    steps = int(cfg.get("warm_start_steps") or fn_args.train_steps) if warm else fn_args.train_steps
    PROGRESS.info("%s %s; %d training steps", "warm start:" if warm else "cold start:", why, steps)
    model.fit(
        train,
        epochs=1,
        steps_per_epoch=steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=0,
    )
    tf.saved_model.save(
        model, fn_args.serving_model_dir, signatures=serving_signatures(model, tf_transform_output, plan)
    )
    warm_start.save(model, fn_args.serving_model_dir, inputs)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, warm_start.STATUS), "w") as f:
        json.dump({"warm_started": warm, "detail": why, "steps": steps}, f)
    LOG.info("model exported to %s", fn_args.serving_model_dir)
