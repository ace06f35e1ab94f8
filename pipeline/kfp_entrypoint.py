"""TFX's Kubeflow V2 container entrypoint, adapted to what open-source KFP's backend passes it.

Every task of the compiled spec runs `python -m pipeline.kfp_entrypoint` with TFX's own
arguments (pipeline/kubeflow.py rewrites the command); this module fixes up the
`ExecutorInput` and the environment, runs TFX's entrypoint in-process, then tidies the
outputs. TFX 1.21's entrypoint was written for Vertex; under KFP 2.16/2.17 it fails on:

- the `executor-logs` output the driver adds to every task when log publishing is on (the
  default): type `system.Artifact` (kubeflow/pipelines backend/src/v2/driver/driver.go:755-766
  at 2.17.0), for which TFX finds no class: `_retrieve_class_path` returns the title as an
  import path (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_entrypoint_utils.py:252-267)
  and `_parse_raw_artifact` fails to import it (:282-283). The launcher writes those logs
  itself (launcher_v2.go:632-655); TFX never needs to see the artifact, so it is dropped.
- input artifacts rebuilt from ML Metadata with an empty `instance_schema`
  (metadata/client.go:1144 "TODO(Bobgy): figure out how to get schema", then :254-258):
  `yaml.safe_load("")` is None and TFX's `data.get('title', ...)` raises
  (kubeflow_v2_entrypoint_utils.py:257-259). The component's own inputs spec, which TFX's
  compiler passes as `--json_serialized_inputs_spec_args`, names each input's type: it is put
  back.
- `KFP_NAMESPACE`: TFX's KubernetesRunner (the InfraValidator's `kubernetes` runner) needs it
  and `KFP_POD_NAME` (tfx/utils/kube_utils.py:236-259); KFP sets only `KFP_POD_NAME` and
  `KFP_POD_UID` (backend/src/v2/compiler/argocompiler/common.go:43-56). The pod's own
  namespace is in its service account mount; it is set from there.
- zero-byte "directory marker" objects: TensorFlow's GCS filesystem writes one per directory
  it creates, and the launcher, which downloads every input artifact before the command runs
  (launcher_v2.go:927-1003), turns an artifact's marker into a file where the directory must
  go and fails ("not a directory", kubeflow/pipelines#13476; object_store.go:146-205 at
  2.17.0). After the executor, the markers of non-empty directories under each output are
  deleted (an empty directory's marker is harmless: nothing is downloaded below it).

File-based ExampleGen executors first run TFX's own Kubeflow V2 ExampleGen driver (the
spec's `preCacheCheck` hook, which open-source KFP ignores): it resolves `{SPAN}`/`{VERSION}`
patterns and fingerprints the input, and TFX's entrypoint reads its result back
(kubeflow_v2_run_executor.py:89-102), as the local runner's ExampleGen driver does. The
run parameter `span` (pipeline/kubeflow.py) reaches that driver as the RangeConfig it takes.
"""

from __future__ import annotations

import json
import logging
import os

from pipeline.kubeflow import SPAN_PARAMETER

LOG = logging.getLogger(__name__)
LOGS_OUTPUT = "executor-logs"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# Object stores whose TensorFlow filesystem writes directory markers (TF's GCS filesystem
# creates an empty "dir/" object for every directory it is asked to create).
MARKER_SCHEMES = ("gs://",)


def adapt_executor_input(executor_input: dict, inputs_spec: dict | None) -> dict:
    """The ExecutorInput (JSON dict) as TFX's entrypoint can parse it; returns a new dict."""
    data = json.loads(json.dumps(executor_input))
    outputs = data.get("outputs", {}).get("artifacts", {})
    outputs.pop(LOGS_OUTPUT, None)
    declared = (inputs_spec or {}).get("artifacts", {})
    for key, artifact_list in data.get("inputs", {}).get("artifacts", {}).items():
        artifact_type = declared.get(key, {}).get("artifactType")
        for artifact in artifact_list.get("artifacts", []):
            kind = artifact.get("type") or {}
            if artifact_type and not (kind.get("instanceSchema") or "").strip() and not kind.get("schemaTitle"):
                artifact["type"] = artifact_type
    return data


def span_selection(executor_input: dict) -> dict:
    """The run parameter `span` (pipeline/kubeflow.py compiles it for ExampleGen) as what TFX's
    ExampleGen driver reads: the exec property `range_config`, a RangeConfig of that one span
    (driver.py:85-94); -1 leaves it out, and the driver takes the newest span. Returns a new dict."""
    from google.protobuf import json_format
    from tfx.proto import range_config_pb2

    data = json.loads(json.dumps(executor_input))
    values = data.get("inputs", {}).get("parameterValues", {})
    if SPAN_PARAMETER not in values:
        return data
    span = values.pop(SPAN_PARAMETER)
    if isinstance(span, bool) or not isinstance(span, (int, float)) or span != int(span) or span < -1:
        raise ValueError(f"run parameter span: a span number >= 0, or -1 for the newest, got {span!r}")
    if span >= 0:
        static = range_config_pb2.StaticRange(start_span_number=int(span), end_span_number=int(span))
        values["range_config"] = json_format.MessageToJson(
            range_config_pb2.RangeConfig(static_range=static), preserving_proto_field_name=True
        )
    return data


def kfp_environment(environ: dict, namespace_file: str = SERVICE_ACCOUNT_NAMESPACE) -> dict:
    """`KFP_NAMESPACE` from the pod's service account when KFP did not set it."""
    env = dict(environ)
    if "KFP_NAMESPACE" not in env and "KFP_POD_NAME" in env and os.path.isfile(namespace_file):
        with open(namespace_file) as f:
            env["KFP_NAMESPACE"] = f.read().strip()
    return env


def remove_directory_markers(uri: str, fs=None) -> int:
    """Delete the zero-byte markers of the non-empty directories under `uri` (the artifact
    directory itself included); returns how many were deleted. Only object stores have them."""
    if not uri.startswith(MARKER_SCHEMES):
        return 0
    if fs is None:
        from tfx.dsl.io import fileio as fs
    if not fs.isdir(uri):
        return 0
    removed = 0
    for dirpath, subdirs, files in fs.walk(uri):
        if not (subdirs or files):
            continue
        marker = dirpath.rstrip("/") + "/"
        try:
            fs.remove(marker)  # TF's GCS DeleteFile of "dir/" deletes just that object
            removed += 1
        except Exception:  # no marker for this directory (it was never created explicitly)
            pass
    return removed


def _is_file_based_example_gen(executor_class_path: str) -> bool:
    from tfx.components.example_gen import base_example_gen_executor
    from tfx.utils import import_utils

    cls = import_utils.import_class_by_path(executor_class_path)
    return issubclass(cls, base_example_gen_executor.BaseExampleGenExecutor) or getattr(cls, "FILE_BASED", False)


def run(args, beam_args: list[str]) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    os.environ.update(kfp_environment(os.environ))
    inputs_spec = json.loads(args.json_serialized_inputs_spec_args or "{}")
    adapted = adapt_executor_input(json.loads(args.json_serialized_invocation_args), inputs_spec)
    args.json_serialized_invocation_args = json.dumps(adapted)
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.ParseDict(adapted, executor_input, ignore_unknown_fields=True)
    if "input_base" in executor_input.inputs.parameter_values and _is_file_based_example_gen(args.executor_class_path):
        from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

        adapted = span_selection(adapted)
        executor_input = json_format.ParseDict(adapted, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)

        spec = pipeline_spec_pb2.ComponentInputsSpec()
        json_format.ParseDict(inputs_spec, spec, ignore_unknown_fields=True)
        driver._run_driver(executor_input, spec if inputs_spec else None)
        # TFX's entrypoint takes the driver's parameters from its output file but not the
        # span, version and fingerprint it sets on the Examples (driver.py:120-144): as the
        # local ExampleGen driver does, they go on the output artifact.
        with open(executor_input.outputs.output_file) as f:
            resolved = json.load(f).get("artifacts", {})
        for key, artifact_list in resolved.items():
            for declared, found in zip(adapted["outputs"]["artifacts"][key]["artifacts"], artifact_list["artifacts"]):
                declared.setdefault("metadata", {}).update(found.get("metadata", {}))
        args.json_serialized_invocation_args = json.dumps(adapted)
    kubeflow_v2_run_executor._run_executor(args, beam_args)
    for key, artifact_list in executor_input.outputs.artifacts.items():
        for artifact in artifact_list.artifacts:
            removed = remove_directory_markers(artifact.uri)
            if removed:
                LOG.info("%s: removed %d directory marker object(s) under %s", key, removed, artifact.uri)


def main() -> None:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    # As TFX's own __main__ (kubeflow_v2_run_executor.py:227-233): its flags, the rest Beam's.
    app.run(lambda parsed: run(*parsed), flags_parser=kubeflow_v2_run_executor._parse_flags)


if __name__ == "__main__":
    main()
