"""Reading the curated schema, with errors a user can act on."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2


def load_schema(path: str) -> schema_pb2.Schema:
    if "://" in path:  # remote (gs://...): only TensorFlow's file system reads it
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "r") as f:
            text = f.read()
    else:
        with open(path) as f:
            text = f.read()
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as e:
        raise ValueError(f"schema {path} is not a valid Schema text proto: {e}") from None
