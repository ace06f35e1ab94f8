"""Run a compiled KFP v2 spec on this machine, task by task, as KFP's launcher would.

This is the proof that what compiles also runs: every task is started with exactly the
command and arguments in the spec (TFX's v2 container entrypoint), the `{{$}}` placeholder
filled with an `ExecutorInput` like KFP's driver builds it (parameters, input artifacts
with the producer's metadata, output URIs under the pipeline root), and each task's
`ExecutorOutput` is read back and handed to the tasks downstream. What it does not do is
start containers: tasks run in this runtime, so the image itself, the cluster's storage,
resource requests and KFP's caching are only exercised on a real cluster.

Only container executors run: open-source KFP refuses resolver executors, and importers
are not implemented here; such a spec is refused before any task starts. TFX's Vertex-only
lifecycle hooks (`preCacheCheck`) are ignored, as open-source KFP ignores them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pipeline.kubeflow import SpecError, load_job, task_dependencies

LOG = logging.getLogger(__name__)
PLACEHOLDER = "{{$}}"


class TaskFailed(RuntimeError):
    def __init__(self, task: str, log_path: str, tail: str):
        super().__init__(f"task {task} failed; log: {log_path}\n{tail}")
        self.task = task
        self.log_path = log_path


@dataclass
class LocalRun:
    run_id: str
    root: str
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> key -> RuntimeArtifact

    def artifact(self, task: str, key: str):
        return self.outputs[task][key]


def execution_order(spec) -> list[str]:
    deps = task_dependencies(spec)
    for task, needs in deps.items():
        missing = needs - deps.keys()
        if missing:
            raise SpecError(f"task {task} depends on unknown task(s) {sorted(missing)}")
    order, done = [], set()
    while len(order) < len(deps):
        ready = sorted(t for t, needs in deps.items() if t not in done and needs <= done)
        if not ready:
            raise SpecError(f"dependency cycle among {sorted(set(deps) - done)}")
        order.extend(ready)
        done.update(ready)
    return order


def _deployment(spec):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
    try:
        json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), deployment,
                              ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise SpecError(f"deploymentSpec: {e}") from None
    return deployment


def check_runnable(spec, deployment) -> None:
    """Refuse, before anything runs, what open-source KFP's backend would refuse."""
    for name, task in spec.root.dag.tasks.items():
        component = spec.components.get(task.component_ref.name)
        if component is None:
            raise SpecError(f"task {name}: no component {task.component_ref.name!r}")
        executor = deployment.executors.get(component.executor_label)
        if executor is None:
            raise SpecError(f"task {name}: no executor {component.executor_label!r}")
        kind = executor.WhichOneof("spec")
        if kind != "container":
            # KFP's backend answers e.g. "resolver executors not implemented".
            raise SpecError(f"task {name}: {kind} executors do not run on open-source Kubeflow Pipelines")
        if task.HasField("trigger_policy") and task.trigger_policy.condition:
            raise SpecError(f"task {name}: conditions are not supported here")


def pipeline_parameters(job, spec, overrides: dict[str, str]) -> dict[str, Any]:
    from google.protobuf import json_format

    declared = spec.root.input_definitions.parameters
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise SpecError(f"unknown run parameter(s) {unknown}; the spec declares {sorted(declared)}")
    values = {}
    for name, p in declared.items():
        if p.HasField("default_value"):
            values[name] = json_format.MessageToDict(p.default_value)
        if name in job.runtime_config.parameter_values:
            values[name] = json_format.MessageToDict(job.runtime_config.parameter_values[name])
    values.update(overrides)
    missing = sorted(n for n, p in declared.items() if n not in values and not p.is_optional)
    if missing:
        raise SpecError(f"run parameter(s) {missing} have no value and no default")
    return values


def _executor_input(task_name: str, task, component, params: dict[str, Any], run: LocalRun):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as ps

    ex = ps.ExecutorInput()
    for name, p in task.inputs.parameters.items():
        kind = p.WhichOneof("kind")
        if kind == "runtime_value":
            ex.inputs.parameter_values[name].CopyFrom(p.runtime_value.constant)
        elif kind == "component_input_parameter":
            json_format.ParseDict(params[p.component_input_parameter], ex.inputs.parameter_values[name])
        else:
            raise SpecError(f"task {task_name}: input parameter {name} of kind {kind} is not supported")
    for name, a in task.inputs.artifacts.items():
        if a.WhichOneof("kind") != "task_output_artifact":
            raise SpecError(f"task {task_name}: input artifact {name} is not a task output")
        src = a.task_output_artifact
        produced = run.outputs.get(src.producer_task, {}).get(src.output_artifact_key)
        if produced is None:
            raise SpecError(f"task {task_name}: {src.producer_task} produced no {src.output_artifact_key}")
        ex.inputs.artifacts[name].artifacts.add().CopyFrom(produced)
    task_dir = f"{run.root}/{run.run_id}/{task_name}"
    for key, definition in component.output_definitions.artifacts.items():
        art = ex.outputs.artifacts[key].artifacts.add()
        art.name = f"{run.run_id}/{task_name}/{key}"
        art.type.CopyFrom(definition.artifact_type)
        art.uri = f"{task_dir}/{key}"
    ex.outputs.output_file = f"{task_dir}/executor_output.json"
    return ex


def _command(task_name: str, container, executor_input_json: str) -> list[str]:
    argv = list(container.command) + [a.replace(PLACEHOLDER, executor_input_json) for a in container.args]
    for arg in argv:
        if "{{$" in arg:
            raise SpecError(f"task {task_name}: placeholder left unresolved in {arg[:80]!r}")
    return argv


def _collect_outputs(task_name: str, ex, run: LocalRun) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as ps

    out = ps.ExecutorOutput()
    if os.path.exists(ex.outputs.output_file):
        with open(ex.outputs.output_file) as f:
            json_format.Parse(f.read(), out, ignore_unknown_fields=True)
    results = {}
    for key, declared in ex.outputs.artifacts.items():
        artifact = declared.artifacts[0]
        if key in out.artifacts and out.artifacts[key].artifacts:
            reported = out.artifacts[key].artifacts[0]  # KFP's launcher merges what the executor wrote
            if reported.uri:
                artifact.uri = reported.uri
            artifact.metadata.update(json_format.MessageToDict(reported.metadata))
        results[key] = artifact
    run.outputs[task_name] = results


def run_compiled(job_path: str, params: dict[str, str] | None = None, pipeline_root: str | None = None,
                 log_dir: str | None = None, on_progress=None) -> LocalRun:
    """Run every task of the compiled spec at `job_path`; raises SpecError or TaskFailed."""
    from google.protobuf import json_format

    job, spec = load_job(job_path)
    deployment = _deployment(spec)
    check_runnable(spec, deployment)
    order = execution_order(spec)
    values = pipeline_parameters(job, spec, params or {})
    root = pipeline_root or job.runtime_config.gcs_output_directory
    if not root:
        raise SpecError("no pipeline root: the spec has none and none was given")
    run = LocalRun(run_id=time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], root=root)
    log_dir = log_dir or os.path.join(root, run.run_id, "logs")
    os.makedirs(log_dir, exist_ok=True)
    for i, name in enumerate(order, 1):
        task = spec.root.dag.tasks[name]
        component = spec.components[task.component_ref.name]
        executor = deployment.executors[component.executor_label]
        ex = _executor_input(name, task, component, values, run)
        argv = _command(name, executor.container, json_format.MessageToJson(ex, indent=None))
        env = dict(os.environ, **{e.name: e.value for e in executor.container.env})
        log_path = os.path.join(log_dir, f"{name}.log")
        started = time.monotonic()
        if on_progress:
            on_progress(i, len(order), name, None)
        with open(log_path, "w") as log:
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=os.path.dirname(log_path))
        run.seconds[name] = time.monotonic() - started
        if proc.returncode:
            with open(log_path) as f:
                tail = "".join(f.readlines()[-15:])
            raise TaskFailed(name, log_path, tail)
        _collect_outputs(name, ex, run)
        if on_progress:
            on_progress(i, len(order), name, run.seconds[name])
    return run
