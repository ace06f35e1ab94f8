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


def disallow_nonfinite_floats(schema: schema_pb2.Schema) -> list[str]:
    """Makes NaN and infinity anomalies in every FLOAT feature whose domain does not say
    otherwise; returns the features changed.

    TFDV reports NaN and infinite values only where a float_domain sets disallow_nan /
    disallow_inf, and an inferred schema sets neither: without this a feature with NaN in
    5% of the rows passes validation and trains a worse model. A flag already present
    (e.g. `disallow_nan: false`, to accept NaN in that feature) is left as it is. A feature
    with another kind of domain (TFDV rejects a shared float domain referenced by name) is
    not touched.
    """
    changed = []
    for feature in schema.feature:
        if feature.type != schema_pb2.FLOAT or feature.WhichOneof("domain_info") not in (None, "float_domain"):
            continue
        domain = feature.float_domain
        before = (domain.HasField("disallow_nan"), domain.HasField("disallow_inf"))
        if not before[0]:
            domain.disallow_nan = True
        if not before[1]:
            domain.disallow_inf = True
        if not all(before):
            changed.append(feature.name)
    return changed
