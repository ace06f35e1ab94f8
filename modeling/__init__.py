"""The model code: feature roles, preprocessing, the Keras model, its signatures and `run_fn`.

Everything a data scientist reads or replaces to change what is learned lives here, and
none of it knows how it is orchestrated: no `tfx.orchestration`, no runner, nothing of
`pipeline/` (tests/test_layers.py keeps it so). Transform and the Trainer call into it by
module path with a JSON "plan" (modeling/roles.py) that says, per feature, what to do.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2, as tf.Transform needs: pipeline/__init__.py
