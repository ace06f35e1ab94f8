"""SliceReport: the Evaluator's result as report.html and report.md, an artifact of every run.

Reviewers should not need Jupyter (or the internet, which TFMA's widgets load charts
from) to see per-slice metrics: this step renders them into static files next to the
evaluation, and the local runner prints where they are.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.artifact import Artifact
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, ModelEvaluation, ModelRun

from components.edge_export import EdgeModel


class SliceReportFiles(Artifact):
    """A directory holding report.html and report.md.

    KFP v2 only accepts custom types titled `module.Class`, and TFX's container entrypoint
    imports the class by that title, hence a name that is also an import path.
    """

    TYPE_NAME = "components.SliceReportFiles"


@component
def SliceReport(
    evaluation: InputArtifact[ModelEvaluation],
    statistics: InputArtifact[ExampleStatistics],
    anomalies: InputArtifact[ExampleAnomalies],
    report: OutputArtifact[SliceReportFiles],
    small_slice_examples: Parameter[int] = 50,
    drift: InputArtifact[ExampleAnomalies] = None,
    model_run: InputArtifact[ModelRun] = None,
    edge_model: InputArtifact[EdgeModel] = None,
):
    from reporting.model import continuous_training, load_edge_report, load_report
    from reporting.render import write_reports

    result = load_report(evaluation.uri, statistics.uri, anomalies.uri, small_slice_examples)
    result.continuous = continuous_training(drift, model_run.uri if model_run is not None else None)
    if edge_model is not None:
        result.edge = load_edge_report(edge_model.uri)
    html_path, md_path = write_reports(result, report.uri)
    report.set_string_custom_property("html", html_path)
    report.set_string_custom_property("markdown", md_path)
    report.set_int_custom_property("blessed", int(result.blessed))
