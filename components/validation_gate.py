"""ValidationGate: stops the run before Transform when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing downstream looks at them, so a stock
pipeline trains on bad data. This component reads the anomalies of every split and fails
with one message listing each feature and why (or only warns, if configured).
"""


import logging
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

LOG = logging.getLogger(__name__)


class AnomaliesFound(RuntimeError):
    """The data does not match the schema; the message lists features and reasons."""


def read_anomalies(artifact) -> "dict[str, list[str]]":
    """{split: ["feature: reason; reason", ...]} for every split with anomalies."""
    found: dict[str, list[str]] = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), "SchemaDiff.pb")
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        lines = []
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reasons = "; ".join(r.description or r.short_description for r in info.reason)
            lines.append(f"{feature}: {reasons or info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            reasons = "; ".join(r.description or r.short_description for r in info.reason)
            lines.append(f"(dataset): {reasons or info.description}")
        if lines:
            found[split] = lines
    return found


def format_anomalies(found: dict[str, list[str]]) -> str:
    return "\n".join(f"  [{split}] {line}" for split, lines in found.items() for line in lines)


@component
def ValidationGate(anomalies: InputArtifact[ExampleAnomalies], fail_on_anomalies: Parameter[int] = 1):
    found = read_anomalies(anomalies)
    if not found:
        LOG.info("ValidationGate: no anomalies")
        return
    message = f"ExampleValidator found anomalies against the schema:\n{format_anomalies(found)}"
    if fail_on_anomalies:
        raise AnomaliesFound(message + "\nFix the data or the schema (schemas/), or set fail_on_anomalies = false.")
    LOG.warning("%s\n(continuing: fail_on_anomalies is off)", message)
