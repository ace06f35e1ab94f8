"""The pipeline definition and its configuration, shared by both runners."""

import os

# tf.Transform works with Keras 2 only, and picks it by setting TF_USE_LEGACY_KERAS when it
# is imported; but TensorFlow decides what `tf.keras` is the first time anything touches it.
# Whichever came first decided the exported model's Keras, and a Keras 3 export restores its
# variables under other names than its signatures read in a TF1-style loader (TF Serving's):
# so the choice is made here, before any TensorFlow import of the project's code.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
