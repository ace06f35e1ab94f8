"""The edge model's preprocessing: tf.Transform's lookups and buckets as plain arithmetic.

A LiteRT model cannot do what the Transform graph does (vocabulary lookups are hash tables,
buckets are `UpperBound`: Select TF ops that LiteRT.js does not have), and a browser cannot
send it strings or int64 either. So the edge model takes the transformed features as
float32 / int32 tensors, and this module turns a raw record into them from
`edge_features.json`, the numbers the Transform analysers found (written by
modeling/edge.py, which checks this module against the Transform graph on the eval split).
web/edge_features.js is the same algorithm line for line; tests hold both equal to TFT.

Stdlib only: the same file must be readable next to a phone app's or a server's code.

Spec, per feature (`role` as in modeling/roles.py):
  numeric              {"mean", "std"}: (x - mean) / std in float32; absent or non-finite -> 0
  bucketized           {"boundaries", "absent_bucket"}: the count of boundaries <= x; absent -> absent_bucket
  integer_categorical  {"vocabulary", "default"}: index of str(x), else len(vocabulary) (OOV)
  string_vocabulary    {"vocabulary", "default"}: index of x, else len(vocabulary) (OOV)
  optional features add "<key minus _xf>_missing_xf": 1.0 when absent, else 0.0
"""

from __future__ import annotations

import bisect
import math
import struct

SPEC_FILE = "edge_features.json"


def f32(x: float) -> float:
    """Round to the nearest float32, as TensorFlow's float32 arithmetic does after each step."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def missing_key(key: str) -> str:
    return key.removesuffix("_xf") + "_missing_xf"


def _present_number(x) -> float | None:
    if x is None or x == "":
        return None
    v = f32(float(x))
    return v if math.isfinite(v) else None


class EdgeFeatures:
    """The spec's transform; the vocabularies become dictionaries once."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._index = {
            f["key"]: {t: i for i, t in enumerate(f["vocabulary"])} for f in spec["features"] if "vocabulary" in f
        }

    def __call__(self, record: dict) -> dict:
        """{input name: number} for one raw record ({feature name: value, or None when absent})."""
        out = {}
        for f in self.spec["features"]:
            x = record.get(f["name"])
            role = f["role"]
            if role in ("numeric", "bucketized"):
                v = _present_number(x)
                present = v is not None
                if role == "numeric":
                    std = f["std"]
                    out[f["key"]] = f32(f32(v - f["mean"]) / std) if present and std else 0.0
                else:
                    out[f["key"]] = bisect.bisect_right(f["boundaries"], v) if present else f["absent_bucket"]
            else:
                present = x is not None and x != ""
                token = x if present else f["default"]
                if role == "integer_categorical":
                    token = str(int(token))
                index = self._index[f["key"]]
                out[f["key"]] = index.get(token, len(index))
            if f["optional"]:
                out[missing_key(f["key"])] = 0.0 if present else 1.0
        return out


def record_of_example(example, names) -> dict:
    """The first value of each named feature of a tf.train.Example (None when absent)."""
    record = {}
    for name in names:
        feature = example.features.feature.get(name)
        values = None
        if feature is not None:
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
        if not values:
            record[name] = None
        elif isinstance(values[0], bytes):
            record[name] = values[0].decode("utf-8", "replace")
        else:
            record[name] = values[0]
    return record
