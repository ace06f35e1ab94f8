"""Device set-up for MirroredStrategy: every GPU, or the CPU split into logical replicas."""

from __future__ import annotations

import logging

import tensorflow as tf

LOG = logging.getLogger(__name__)


def split_cpu(num_replicas: int) -> bool:
    """Split the CPU into `num_replicas` logical devices so MirroredStrategy runs that many
    replicas with synchronous all-reduce on a CPU-only host.

    TensorFlow fixes its devices the first time it touches them, so this must run before
    any TF op in the process (the local runner calls it at start; the Trainer calls it
    again, which matters when it runs in a fresh process, as on Kubeflow). Returns False
    when it is too late or there are GPUs, and says so.
    """
    if num_replicas <= 1 or tf.config.list_physical_devices("GPU"):
        return False
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_replicas)]
        )
        return True
    except RuntimeError:
        current = len(tf.config.list_logical_devices("CPU"))
        if current != num_replicas:
            LOG.warning(
                "TensorFlow is already initialised with %d CPU device(s); cannot split into %d replicas",
                current,
                num_replicas,
            )
        return False


def mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """All GPUs when there are any, otherwise every logical CPU device."""
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) == 1:
        return tf.distribute.MirroredStrategy(cpus)
    return tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=cpus[0])
    )
