"""Run a compiled KFP v2 spec on this machine, task by task, as open-source KFP's backend would.

A stand-in for the backend that runs the spec on a cluster (kubeflow/pipelines
backend/src/v2 at 2.16/2.17; line numbers below are from tag 2.17.0), at least as strict as
it on every rule it encodes:

- before anything runs: Argo's rule for DAG task names (pipeline/kubeflow.py), container
  executors only (argocompiler/dag.go:349 "resolver executors not implemented"), no
  conditions here, and a pipeline root the launcher accepts (objectstore/config.go:130-139;
  a local directory only with `local_storage=True`, for a local proof);
- the driver's ExecutorInput: run parameters; input artifacts as ML Metadata returns them
  (name = the artifact's id, metadata through MLMD's value types: converter.go:110-220,
  and an empty `instance_schema`: metadata/client.go:1144 and :254-258); output URIs under
  ROOT/PIPELINE/RUN/TASK/SALT (client.go:391-420, driver.go:768-808); and the
  `executor-logs` output of type `system.Artifact` when log publishing is on, the backend's
  default (driver.go:755-766);
- KFP's cache: the key of cacheutils/cache.go:173-233 (input artifact ids, parameter values,
  output specs, command and arguments as compiled, image), looked up per pipeline like
  cache.go:105-138; a hit reuses the earlier execution's outputs (driver/cache.go:56-78) and
  the task does not run. The emulated ML Metadata and cache live beside the pipeline root, so
  a second run-local sees the first one's;
- the launcher's download of every input artifact into the pod before the command runs
  (launcher_v2.go:927-1003) with the object store's rules (objectstore/object_store.go:146-205):
  an artifact written directly by TensorFlow to GCS has a zero-byte marker object per
  directory (kubeflow/pipelines#13476); one written through pipeline/kfp_entrypoint.py has
  them only for empty directories (it deletes the others);
- each task's command as the image runs it: the spec's command and arguments, `{{$}}`
  filled, in the image's working directory with its PYTHONPATH (the Dockerfile's WORKDIR and
  ENV), with the environment KFP gives the container: the spec's env, KFP_POD_NAME and
  KFP_POD_UID (argocompiler/common.go:43-56) and nothing else of KFP's (no KFP_NAMESPACE).

It does not start containers or pods: the image itself, a bucket, resource requests and the
InfraValidator's `kubernetes` runner (a spec using it is refused) need a real cluster.
TFX's Vertex-only `preCacheCheck` hooks are ignored, as open-source KFP ignores them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.kubeflow import (
    ENTRYPOINT,
    SpecError,
    check_argo_task_names,
    check_parameter_type,
    check_pipeline_root,
    load_job,
    task_dependencies,
)

LOG = logging.getLogger(__name__)
PLACEHOLDER = "{{$}}"
LOGS_OUTPUT = "executor-logs"
PROJECT_DIR = str(Path(__file__).resolve().parent.parent)
STATE_DIR = ".kfp-local"  # beside the artifacts, under the pipeline root


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
    states: dict[str, str] = field(default_factory=dict)  # task -> "done" | "cached"
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> key -> RuntimeArtifact
    fingerprints: dict[str, str] = field(default_factory=dict)

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
        json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), deployment, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise SpecError(f"deploymentSpec: {e}") from None
    return deployment


def _executor_class(container) -> str:
    args = list(container.args)
    return args[args.index("--executor_class_path") + 1] if "--executor_class_path" in args else ""


def check_runnable(spec, deployment) -> None:
    """Refuse, before anything runs, what open-source KFP's backend would refuse."""
    check_argo_task_names(spec.root.dag.tasks)
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
        if (
            _kubernetes_infra_validation(task, executor.container)
            and list(executor.container.command) != ENTRYPOINT
            and not any(e.name == "KFP_NAMESPACE" for e in executor.container.env)
        ):
            raise SpecError(
                f"task {name}: TFX's KubernetesRunner needs KFP_NAMESPACE (tfx/utils/kube_utils.py:236-259), "
                "which KFP does not set (it sets KFP_POD_NAME and KFP_POD_UID: argocompiler/common.go:43-56); "
                "every model would be marked not blessed and the run would still succeed. Run the task "
                "through pipeline.kfp_entrypoint (pipeline/kubeflow.py does)"
            )


def _kubernetes_infra_validation(task, container) -> bool:
    if not _executor_class(container).endswith("infra_validator.Executor"):
        return False
    serving = task.inputs.parameters.get("serving_spec")
    return serving is not None and "kubernetes" in json.loads(serving.runtime_value.constant.string_value or "{}")


def check_runs_here(spec, deployment) -> None:
    """What this machine cannot run although a cluster could."""
    for name, task in spec.root.dag.tasks.items():
        container = deployment.executors[spec.components[task.component_ref.name].executor_label].container
        if _kubernetes_infra_validation(task, container):
            raise SpecError(
                f"task {name}: the InfraValidator's kubernetes runner starts a TF Serving pod, which "
                "needs a cluster; compile with --set infra_validator_runner=local for a local run"
            )


def pipeline_parameters(job, spec, overrides: dict[str, Any]) -> dict[str, Any]:
    from google.protobuf import json_format
    from kfp.pipeline_spec.pipeline_spec_pb2 import ParameterType

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
    for name, value in overrides.items():  # as the API server checks them when the run is created
        check_parameter_type(name, ParameterType.ParameterTypeEnum.Name(declared[name].parameter_type), value)
    values.update(overrides)
    missing = sorted(n for n, p in declared.items() if n not in values and not p.is_optional)
    if missing:
        raise SpecError(f"run parameter(s) {missing} have no value and no default")
    return values


def through_mlmd(key: str, value: Any) -> Any:
    """A metadata value as the driver hands it back after the launcher recorded it in ML
    Metadata: numbers as doubles, booleans as ints, lists and dicts wrapped in a struct
    (converter.go:138-171 one way, :181-220 the other)."""
    if isinstance(value, bool):
        return float(int(value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    raise SpecError(f"metadata {key!r}: KFP cannot record a {type(value).__name__} value (metadata/converter.go:168)")


class Store:
    """ML Metadata's artifacts and KFP's cache table, as far as the driver reads them."""

    def __init__(self, root: str):
        self.path = os.path.join(root, STATE_DIR, "store.json")
        data = {"next_id": 1, "artifacts": {}, "cache": {}}
        if os.path.exists(self.path):
            with open(self.path) as f:
                data = json.load(f)
        self.data = data

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def record(self, uri: str, metadata: dict, markers: str) -> str:
        artifact_id = str(self.data["next_id"])
        self.data["next_id"] += 1
        self.data["artifacts"][artifact_id] = {
            "uri": uri,
            "metadata": {k: through_mlmd(k, v) for k, v in metadata.items()},
            "markers": markers,
        }
        return artifact_id

    def runtime_artifact(self, artifact_id: str):
        from google.protobuf import json_format
        from kfp.pipeline_spec import pipeline_spec_pb2 as ps

        stored = self.data["artifacts"][artifact_id]
        artifact = ps.RuntimeArtifact(name=artifact_id, uri=stored["uri"])
        artifact.type.instance_schema = ""  # what OutputArtifact.ToRuntimeArtifact sets
        json_format.ParseDict(stored["metadata"], artifact.metadata)
        return artifact


def cache_key(ex, container) -> str:
    """KFP's fingerprint of a task (cacheutils/cache.go:151-233, driver/cache.go:83-117)."""
    from google.protobuf import json_format

    key = {
        "inputArtifactNames": {
            k: {"artifactNames": [a.name for a in v.artifacts]} for k, v in ex.inputs.artifacts.items()
        },
        "inputParameterValues": {k: json_format.MessageToDict(v) for k, v in ex.inputs.parameter_values.items()},
        "outputArtifactsSpec": {
            k: json_format.MessageToDict(_without_uri(v.artifacts[0]))
            for k, v in ex.outputs.artifacts.items()
            if v.artifacts
        },
        "outputParametersSpec": {},
        "containerSpec": {
            "image": container.image,
            "cmdArgs": list(container.command) + list(container.args),
            "pvcNames": [],
        },
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _without_uri(artifact):
    copy = type(artifact)()
    copy.CopyFrom(artifact)
    copy.uri = ""
    return copy


def second_run_cache_hits(spec) -> list[str]:
    """The tasks a cluster serves from its cache when the run is repeated with the same
    parameters: caching on, and every input artifact from a task that is itself served
    from the cache (new input artifact ids change the key)."""
    hits: list[str] = []
    for name in execution_order(spec):
        task = spec.root.dag.tasks[name]
        producers = {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()}
        if task.caching_options.enable_cache and producers <= set(hits):
            hits.append(name)
    return hits


def _executor_input(
    task_name: str,
    task,
    component,
    params: dict[str, Any],
    store: Store,
    run: LocalRun,
    task_root: str,
    pod_dir: str,
    publish_logs: bool,
):
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
        ex.inputs.artifacts[name].artifacts.add().CopyFrom(store.runtime_artifact(produced.name))
    definitions = dict(component.output_definitions.artifacts)
    if publish_logs:
        definitions[LOGS_OUTPUT] = ps.ComponentOutputsSpec.ArtifactSpec(
            artifact_type=ps.ArtifactTypeSchema(schema_title="system.Artifact")
        )
    for key, definition in definitions.items():
        art = ex.outputs.artifacts[key].artifacts.add()
        art.name = key
        art.type.CopyFrom(definition.artifact_type)
        art.uri = f"{task_root}/{key}"
        if definition.HasField("metadata"):
            art.metadata.CopyFrom(definition.metadata)
    ex.outputs.output_file = os.path.join(pod_dir, "output_metadata.json")
    return ex


def _command(task_name: str, container, executor_input_json: str) -> list[str]:
    argv = list(container.command) + [a.replace(PLACEHOLDER, executor_input_json) for a in container.args]
    for arg in argv:
        if "{{$" in arg:
            raise SpecError(f"task {task_name}: placeholder left unresolved in {arg[:80]!r}")
    return argv


def list_objects(uri: str, markers: str) -> list[tuple[str, int]]:
    """The objects under an artifact's URI in an object store, as (key, size), in the store's
    lexicographic order. `markers`: "all" (TensorFlow wrote the directories itself: one
    zero-byte "dir/" per directory), "empty" (only empty directories keep theirs)."""
    objects = []
    if os.path.isfile(uri):
        return [(uri, os.path.getsize(uri))]
    for dirpath, subdirs, files in os.walk(uri):
        if markers == "all" or not (subdirs or files):
            objects.append((dirpath.rstrip("/") + "/", 0))
        objects += [(os.path.join(dirpath, f), os.path.getsize(os.path.join(dirpath, f))) for f in files]
    return sorted(objects)


def download(uri: str, local_dir: str, markers: str) -> None:
    """The launcher's DownloadBlob (object_store.go:176-205): every object under the prefix,
    the key made relative to it, created as a file. A marker object becomes an empty file
    where its directory should be, and the next object below it fails as on a cluster."""
    blob_dir = uri.rstrip("/")
    for key, _size in list_objects(uri, markers):
        if not (key == blob_dir or key.startswith(blob_dir + "/")):
            continue
        relative = os.path.relpath(key, blob_dir)  # filepath.Rel also cleans "dir/" to "dir"
        local_path = os.path.normpath(os.path.join(local_dir, relative))
        try:
            os.makedirs(os.path.dirname(local_path), exist_ok=True)
            if os.path.isdir(key):
                open(local_path, "w").close()  # os.Create of the zero-byte marker
            else:
                shutil.copyfile(key, local_path)
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as e:
            raise RuntimeError(
                f"failed to download input artifact from remote storage URI {uri!r}: "
                f"{e} (a zero-byte directory marker object, kubeflow/pipelines#13476)"
            ) from None


def _collect_outputs(task_name: str, ex, store: Store, markers: str) -> dict[str, Any]:
    """The launcher: merge what the executor reported (launcher_v2.go:1188-1206), record
    each output in ML Metadata; downstream tasks get them back from there."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as ps

    out = ps.ExecutorOutput()
    if os.path.exists(ex.outputs.output_file):
        with open(ex.outputs.output_file) as f:
            json_format.Parse(f.read(), out, ignore_unknown_fields=True)
    results = {}
    for key, declared in ex.outputs.artifacts.items():
        if key == LOGS_OUTPUT:
            continue
        artifact = declared.artifacts[0]
        metadata = json_format.MessageToDict(artifact.metadata)
        if key in out.artifacts and out.artifacts[key].artifacts:
            reported = out.artifacts[key].artifacts[0]
            if reported.uri:
                artifact.uri = reported.uri
            metadata.update(json_format.MessageToDict(reported.metadata))
        results[key] = store.runtime_artifact(store.record(artifact.uri, metadata, markers))
    return results


def run_compiled(
    job_path: str,
    params: dict[str, str] | None = None,
    pipeline_root: str | None = None,
    local_storage: bool = False,
    publish_logs: bool = True,
    image_workdir: str = PROJECT_DIR,
    log_dir: str | None = None,
    on_progress=None,
) -> LocalRun:
    """Run every task of the compiled spec at `job_path`; raises SpecError or TaskFailed."""

    job, spec = load_job(job_path)
    deployment = _deployment(spec)
    check_runnable(spec, deployment)
    order = execution_order(spec)
    values = pipeline_parameters(job, spec, params or {})
    check_runs_here(spec, deployment)
    root = pipeline_root or job.runtime_config.gcs_output_directory
    if not root:
        raise SpecError("no pipeline root: the spec has none and none was given")
    if not local_storage:
        check_pipeline_root(root)
        raise SpecError(
            f"pipeline root {root}: run-local writes to local storage only; "
            "give --pipeline-root DIR --local-storage for a local proof"
        )
    if "://" in root:
        raise SpecError(f"--local-storage needs a directory as the pipeline root, got {root!r}")
    root = os.path.abspath(root)
    pipeline_name = spec.pipeline_info.name
    run = LocalRun(run_id=time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], root=root)
    log_dir = log_dir or os.path.join(root, pipeline_name, run.run_id, "logs")
    os.makedirs(log_dir, exist_ok=True)
    store = Store(root)
    cache = store.data["cache"].setdefault(pipeline_name, {})
    for i, name in enumerate(order, 1):
        task = spec.root.dag.tasks[name]
        component = spec.components[task.component_ref.name]
        container = deployment.executors[component.executor_label].container
        task_root = f"{root}/{pipeline_name}/{run.run_id}/{name}/{uuid.uuid4()}"
        pod_dir = os.path.join(root, STATE_DIR, "pods", run.run_id, name)
        ex = _executor_input(name, task, component, values, store, run, task_root, pod_dir, publish_logs)
        fingerprint = run.fingerprints[name] = cache_key(ex, container)
        started = time.monotonic()
        if on_progress:
            on_progress(i, len(order), name, None, None)
        cached = cache.get(fingerprint) if task.caching_options.enable_cache else None
        if cached:
            run.outputs[name] = {k: store.runtime_artifact(a) for k, a in cached["outputs"].items()}
            run.states[name] = "cached"
        else:
            _run_task(name, ex, container, run, store, log_dir, pod_dir, image_workdir)
            run.states[name] = "done"
            if task.caching_options.enable_cache:
                cache[fingerprint] = {"run": run.run_id, "outputs": {k: a.name for k, a in run.outputs[name].items()}}
            store.save()
        run.seconds[name] = time.monotonic() - started
        if on_progress:
            on_progress(i, len(order), name, run.seconds[name], run.states[name])
    return run


def _run_task(name, ex, container, run: LocalRun, store: Store, log_dir, pod_dir, image_workdir) -> None:
    from google.protobuf import json_format

    log_path = os.path.join(log_dir, f"{name}.log")
    markers = "empty" if list(container.command) == ENTRYPOINT else "all"
    os.makedirs(pod_dir, exist_ok=True)
    try:
        for key, artifact_list in ex.inputs.artifacts.items():
            for artifact in artifact_list.artifacts:
                stored = store.data["artifacts"][artifact.name]
                download(artifact.uri, os.path.join(pod_dir, "inputs", key), stored["markers"])
        argv = _command(name, container, json_format.MessageToJson(ex, indent=None))
        env = {k: v for k, v in os.environ.items() if k != "KFP_NAMESPACE"}
        env.update({e.name: e.value for e in container.env})
        env.update(KFP_POD_NAME=f"{run.run_id}-{name.lower()}", KFP_POD_UID=str(uuid.uuid4()), PYTHONPATH=image_workdir)
        with open(log_path, "w") as log:
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=image_workdir)
    except RuntimeError as e:
        with open(log_path, "a") as log:
            log.write(f"{e}\n")
        raise TaskFailed(name, log_path, str(e)) from None
    if proc.returncode:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-15:])
        raise TaskFailed(name, log_path, tail)
    run.outputs[name] = _collect_outputs(name, ex, store, markers)
    shutil.rmtree(pod_dir, ignore_errors=True)
