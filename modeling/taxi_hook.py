"""The bundled taxi data's question: does a trip's tip exceed 20% of its fare?

A hook says what no schema can: here, a label derived from two columns. configs/local.toml
names it (`hook = "modeling.taxi_hook"`, `label = "big_tipper"`); another data set
needs no hook, or its own module with the same three names.
"""

from __future__ import annotations

TASK = "binary"
# Columns only the label reads: never model features, and clients do not send them.
SOURCES = ("tips",)
BIG_TIP_FRACTION = 0.2


def label(inputs: dict):
    # Imported here: the configuration reads TASK and SOURCES before anything may import
    # TensorFlow (a bad output location is refused before that).
    import tensorflow as tf

    from modeling.preprocessing import dense

    fare = tf.cast(dense(inputs["fare"]), tf.float32)
    tips = tf.cast(dense(inputs["tips"]), tf.float32)
    return tf.cast(tips > fare * BIG_TIP_FRACTION, tf.int64)
