"""Serving the pushed model: TF Serving's directory rules, its gRPC and REST APIs, rollback.

`layout` (version directories, atomic publish, rollback; stdlib only), `model` (one loaded
version and TF Serving's request semantics), `repository` (which version is served),
`grpc_server`, `rest` (routes), `json_tensor` (REST bodies), `tf_json` (rapidjson's parsing
and writing), `signatures` (is an export valid for TF Serving?), and the `python -m serving`
command line. docs/serving.md says what follows TF Serving and where it differs.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2, as tf.Transform needs: pipeline/__init__.py
