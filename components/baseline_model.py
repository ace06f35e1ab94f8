"""The baseline for the Evaluator on Kubeflow: the model TensorFlow Serving serves now.

Locally, TFX's Resolver finds the latest blessed model in ML Metadata. Open-source Kubeflow
Pipelines cannot run the resolver tasks that KubeflowV2DagRunner compiles it into (its
backend answers "resolver executors not implemented"), so the Kubeflow DAG asks the serving
directory instead: its highest version is, by construction, the last model that passed every
gate and was pushed. When nothing has been pushed yet, the artifact says so and the Evaluator
runs without a baseline, as on a first local run.
"""

import logging
import os

from tfx.components import Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.types.standard_artifacts import Model
from tfx.utils import io_utils, path_utils

from serving import layout

LOG = logging.getLogger(__name__)
FOUND = "baseline_found"


def latest_version_dir(model_base_path: str) -> str | None:
    """TF Serving's rule (serving.layout), through TFX's fileio so that gs:// works too."""
    if not fileio.exists(model_base_path):
        return None
    numbered = [
        int(name)
        for name in (n.rstrip("/") for n in fileio.listdir(model_base_path))
        if layout.is_version_name(name) and fileio.isdir(os.path.join(model_base_path, name))
    ]
    return os.path.join(model_base_path, str(max(numbered))) if numbered else None


@component
def LatestPushedModel(model: OutputArtifact[Model], model_base_path: Parameter[str]):
    source = latest_version_dir(model_base_path)
    if source is None:
        LOG.info("no model pushed yet under %s: evaluating without a baseline", model_base_path)
        model.set_int_custom_property(FOUND, 0)
        return
    io_utils.copy_dir(source, path_utils.serving_model_dir(model.uri))
    model.set_int_custom_property(FOUND, 1)
    model.set_string_custom_property("source", source)
    LOG.info("baseline: %s", source)


class EvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator, minus a baseline artifact that LatestPushedModel marked as absent."""

    def Do(self, input_dict, output_dict, exec_properties):
        key = standard_component_specs.BASELINE_MODEL_KEY
        if key in input_dict:
            input_dict = dict(input_dict)
            input_dict[key] = [
                m for m in input_dict[key] if not m.has_custom_property(FOUND) or m.get_int_custom_property(FOUND)
            ]
        return super().Do(input_dict, output_dict, exec_properties)


class BaselineAwareEvaluator(Evaluator):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)
