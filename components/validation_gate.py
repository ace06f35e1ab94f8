"""ValidationGate: stops the run before Transform when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing downstream looks at them, so a stock
pipeline trains on bad data. This component reads the anomalies of every split and fails
with one message listing each feature and why (or only warns, if configured).
"""


import logging

from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleAnomalies

from components.anomalies import read_anomalies

LOG = logging.getLogger(__name__)


class AnomaliesFound(RuntimeError):
    """The data does not match the schema; the message lists features and reasons."""


def format_anomalies(found: dict[str, list[str]]) -> str:
    return "\n".join(f"  [{split}] {line}" for split, lines in found.items() for line in lines)


@component
def ValidationGate(anomalies: InputArtifact[ExampleAnomalies], fail_on_anomalies: Parameter[int] = 1):
    found = read_anomalies(anomalies.uri)
    if not found:
        LOG.info("ValidationGate: no anomalies")
        return
    message = f"ExampleValidator found anomalies against the schema:\n{format_anomalies(found)}"
    if fail_on_anomalies:
        raise AnomaliesFound(message + "\nFix the data or the schema (schemas/), or set fail_on_anomalies = false.")
    LOG.warning("%s\n(continuing: fail_on_anomalies is off)", message)
