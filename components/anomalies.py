"""Reading ExampleValidator's anomalies, shared by the validation gate and the report."""

from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2


def _reasons(info) -> str:
    return "; ".join(r.description or r.short_description for r in info.reason) or info.description


def read_anomalies(anomalies_uri: str) -> dict[str, list[str]]:
    """{split: ["feature: reason; reason", ...]} for every split that has anomalies."""
    import tensorflow as tf

    found: dict[str, list[str]] = {}
    for entry in sorted(tf.io.gfile.listdir(anomalies_uri)):
        entry = entry.rstrip("/")
        path = os.path.join(anomalies_uri, entry, "SchemaDiff.pb")
        if not entry.startswith("Split-") or not tf.io.gfile.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        lines = [f"{feature}: {_reasons(info)}" for feature, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"(dataset): {_reasons(anomalies.dataset_anomaly_info)}")
        if lines:
            found[entry.removeprefix("Split-")] = lines
    return found
