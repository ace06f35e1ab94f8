"""DriftCheck: has the new span moved away from the one before it? Stops the run if so.

The comparison is TFDV's own (`validate_statistics(previous_statistics=...)` with a
`drift_comparator` per feature in the schema): L-infinity distance between the value
frequencies of a categorical feature, Jensen-Shannon divergence between the histograms
of a numeric one. TFX's experimental DistributionValidator does the same comparison but
re-infers the schema, takes thresholds only from its own config and passes everything
when there is no baseline; and on open-source Kubeflow no resolver can hand it the
previous span's statistics. Here both spans' statistics come from this run's own
StatisticsGen (ExampleGen writes the two spans as splits of their own), on either platform.

Only the model's features are compared: a column the model does not read (a timestamp)
drifts every day by construction. Thresholds: the schema's drift_comparator where it has
one, then the configuration (drift_thresholds per feature, else drift_l_infinity /
drift_jensen_shannon by kind; 0 leaves a feature unchecked).
"""

import json
import logging
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleAnomalies, Examples, ExampleStatistics, Schema

LOG = logging.getLogger(__name__)
# On the output artifact: [{feature, measure, value, threshold, drifted}], and the two spans.
DRIFT_PROPERTY = "drift"
L_INFINITY, JENSEN_SHANNON = "L-infinity distance", "Jensen-Shannon divergence"
_DRIFT_TYPES = ("COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")


class DriftFound(RuntimeError):
    """The new span's distribution moved beyond a threshold; the message names the features."""


def _is_numeric(stats, name: str) -> bool:
    for feature in stats.datasets[0].features:
        if (feature.path.step[0] if feature.path.step else feature.name) == name:
            return feature.HasField("num_stats")
    return False


def compare(
    new_stats,
    previous_stats,
    schema,
    features: list[str],
    l_infinity: float,
    jensen_shannon: float,
    per_feature: dict[str, float],
) -> list[dict]:
    """One row per compared feature: {feature, measure, value, threshold, drifted}.

    `new_stats` / `previous_stats`: DatasetFeatureStatisticsList of the two spans.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    measures = {}
    for feature in schema.feature:
        if feature.name not in features:
            feature.ClearField("drift_comparator")
            continue
        numeric = _is_numeric(new_stats, feature.name)
        given = per_feature.get(feature.name)
        comparator = feature.drift_comparator
        if numeric:
            threshold = given or comparator.jensen_shannon_divergence.threshold or jensen_shannon
        else:
            threshold = given or comparator.infinity_norm.threshold or l_infinity
        feature.ClearField("drift_comparator")
        if not threshold:
            continue
        if numeric:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
        else:
            feature.drift_comparator.infinity_norm.threshold = threshold
        measures[feature.name] = (JENSEN_SHANNON if numeric else L_INFINITY, threshold)
    if not measures:
        return []
    anomalies = tfdv.validate_statistics(new_stats, schema, previous_statistics=previous_stats)
    values = {}
    for info in anomalies.drift_skew_info:
        for m in info.drift_measurements:
            values[".".join(info.path.step)] = m.value
    drifted = {
        name
        for name, info in anomalies.anomaly_info.items()
        if any(anomalies_pb2.AnomalyInfo.Type.Name(r.type) in _DRIFT_TYPES for r in info.reason)
    }
    # A feature absent from either span has no measurement (ExampleValidator judges absence).
    return [
        {"feature": name, "measure": measure, "value": values[name], "threshold": threshold, "drifted": name in drifted}
        for name, (measure, threshold) in sorted(measures.items())
        if name in values
    ]


def describe(rows: list[dict]) -> str:
    return ", ".join(
        f"{r['feature']} ({r['measure']} {r['value']:.3f} > {r['threshold']:g})" for r in rows if r["drifted"]
    )


def _stats(statistics_uri: str, split: str):
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
    return tfdv.load_stats_binary(path) if tf.io.gfile.exists(path) else None


@component
def DriftCheck(
    statistics: InputArtifact[ExampleStatistics],
    schema: InputArtifact[Schema],
    examples: InputArtifact[Examples],
    drift: OutputArtifact[ExampleAnomalies],
    features: Parameter[str],
    thresholds: Parameter[str],
    fail_on_drift: Parameter[int] = 1,
):
    """`features`: JSON list of the model's input features; `thresholds`: JSON
    {"l_infinity": x, "jensen_shannon": y, "features": {name: threshold}}."""
    from tfx.types import artifact_utils
    from tfx.utils import io_utils

    from components.example_gen import PREVIOUS_SPAN_PROPERTY, PREVIOUS_SPAN_SPLIT, SPAN_SPLIT

    span = examples.span
    previous = (
        examples.get_int_custom_property(PREVIOUS_SPAN_PROPERTY)
        if examples.has_custom_property(PREVIOUS_SPAN_PROPERTY)
        else -1
    )
    drift.split_names = artifact_utils.encode_split_names([SPAN_SPLIT])
    drift.set_int_custom_property("new_span", span)
    drift.set_int_custom_property("previous_span", previous)
    previous_stats = _stats(statistics.uri, PREVIOUS_SPAN_SPLIT) if previous >= 0 else None
    if previous_stats is None:
        LOG.info("DriftCheck: span %d is the first: nothing to compare it with", span)
        drift.set_string_custom_property(DRIFT_PROPERTY, "[]")
        return
    limits = json.loads(thresholds)
    schema_proto = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
    rows = compare(
        _stats(statistics.uri, SPAN_SPLIT),
        previous_stats,
        schema_proto,
        json.loads(features),
        limits.get("l_infinity", 0.0),
        limits.get("jensen_shannon", 0.0),
        limits.get("features", {}),
    )
    drift.set_string_custom_property(DRIFT_PROPERTY, json.dumps(rows))
    _write_anomalies(drift.uri, rows)
    found = describe(rows)
    if not found:
        LOG.info("DriftCheck: span %d vs %d: no drift over %d features", span, previous, len(rows))
        return
    message = f"span {span} drifted from span {previous}: {found}"
    if fail_on_drift:
        raise DriftFound(message + ". Check the new data; or raise drift_thresholds, or set fail_on_drift = false.")
    LOG.warning("%s (continuing: fail_on_drift is off)", message)


def _write_anomalies(uri: str, rows: list[dict]) -> None:
    """The drifted features as TFDV Anomalies in Split-span/SchemaDiff.pb, where the
    project reads ExampleValidator's (components/anomalies.py)."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from components.example_gen import SPAN_SPLIT

    out = anomalies_pb2.Anomalies()
    for r in rows:
        if r["drifted"]:
            kind = (
                "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"
                if r["measure"] == JENSEN_SHANNON
                else "COMPARATOR_L_INFTY_HIGH"
            )
            info = out.anomaly_info[r["feature"]]
            info.severity = anomalies_pb2.AnomalyInfo.ERROR
            info.reason.add(
                type=anomalies_pb2.AnomalyInfo.Type.Value(kind),
                short_description="drift",
                description=f"{r['measure']} from the previous span {r['value']:.4f} exceeds {r['threshold']:g}",
            )
    split_dir = os.path.join(uri, f"Split-{SPAN_SPLIT}")
    tf.io.gfile.makedirs(split_dir)
    with tf.io.gfile.GFile(os.path.join(split_dir, "SchemaDiff.pb"), "wb") as f:
        f.write(out.SerializeToString())
