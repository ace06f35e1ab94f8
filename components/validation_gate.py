"""ValidationGate: stops the run before Transform when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing downstream looks at them, so a stock
pipeline trains on bad data. This component reads the anomalies of every split and fails
with one message listing each feature and why (or only warns, if configured).

NaN and infinite float values are also judged from the exact counts the project's
ExampleGen executor takes over every record (components/example_gen.py), not only from
the statistics: statistics computed on a sample (TFDV's sample_rate) can miss a few NaN,
and TFDV's anomaly says that there are some, not how many.
"""

import json
import logging

from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleAnomalies, Examples, Schema

from components.anomalies import read_anomalies
from components.example_gen import NONFINITE_PROPERTY

LOG = logging.getLogger(__name__)


class AnomaliesFound(RuntimeError):
    """The data does not match the schema; the message lists features and reasons."""


def format_anomalies(found: dict[str, list[str]]) -> str:
    return "\n".join(f"  [{split}] {line}" for split, lines in found.items() for line in lines)


def nonfinite_anomalies(nonfinite: dict[str, dict[str, list[int]]], schema) -> dict[str, dict[str, str]]:
    """{split: {feature: "N NaN values, M infinite values"}} for the values the schema disallows.

    `nonfinite` is ExampleGen's {split: {feature: [NaN values, infinite values]}}.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    rules = {
        f.name: (f.float_domain.disallow_nan, f.float_domain.disallow_inf)
        for f in schema.feature
        if f.type == schema_pb2.FLOAT
    }
    found: dict[str, dict[str, str]] = {}
    for split, features in nonfinite.items():
        for name, (nan, inf) in sorted(features.items()):
            no_nan, no_inf = rules.get(name, (False, False))
            parts = ([f"{nan} NaN value{'s' * (nan != 1)}"] if nan and no_nan else []) + (
                [f"{inf} infinite value{'s' * (inf != 1)}"] if inf and no_inf else []
            )
            if parts:
                found.setdefault(split, {})[name] = ", ".join(parts)
    return found


def merge_exact_counts(found: dict[str, list[str]], exact: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """TFDV's lines, each NaN/infinity one with its exact count; a feature TFDV missed gets a line."""
    merged = {split: list(lines) for split, lines in found.items()}
    for split, features in exact.items():
        lines = merged.setdefault(split, [])
        for name, counts in features.items():
            text = f"{counts} (exact count over every example)"
            at = next((i for i, line in enumerate(lines) if line.startswith(f"{name}: ")), None)
            if at is None:
                lines.append(f"{name}: Float feature has {text}; the schema's float_domain disallows them.")
            else:
                lines[at] = f"{lines[at].rstrip('.')}; {text}"
    return merged


@component
def ValidationGate(
    anomalies: InputArtifact[ExampleAnomalies],
    examples: InputArtifact[Examples],
    schema: InputArtifact[Schema],
    fail_on_anomalies: Parameter[int] = 1,
):
    from tfx.utils import io_utils

    found = read_anomalies(anomalies.uri)
    nonfinite = json.loads(examples.get_string_custom_property(NONFINITE_PROPERTY) or "{}")
    if nonfinite:
        schema_proto = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
        found = merge_exact_counts(found, nonfinite_anomalies(nonfinite, schema_proto))
    if not found:
        LOG.info("ValidationGate: no anomalies")
        return
    message = f"ExampleValidator found anomalies against the schema:\n{format_anomalies(found)}"
    if fail_on_anomalies:
        raise AnomaliesFound(message + "\nFix the data or the schema (schemas/), or set fail_on_anomalies = false.")
    LOG.warning("%s\n(continuing: fail_on_anomalies is off)", message)
