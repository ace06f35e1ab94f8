"""The one typed configuration of the pipeline: defaults < TOML file < command line.

Both runners build a `PipelineConfig` with `load_config()` and hand it to
`create_pipeline`; nothing else reads flags or environment. Every value is validated
before anything runs, and an error names the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (TFX 1.21's image): tomli, the same parser, is in the lock
    import tomli as tomllib


PROJECT_DIR = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


# The metrics EdgeExport compares (modeling/edge.py computes them for every task).
EDGE_METRICS = ("auc", "binary_accuracy", "accuracy", "mean_absolute_error", "root_mean_squared_error")


@dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str = "tabular"
    # Input: a directory of TFRecord files of tf.train.Example (gzip, zlib or uncompressed,
    # told by their content).
    input_base: str = "data/taxi"
    # Either a hash split of all files matching input_pattern ...
    input_pattern: str = "*"
    split_ratio: dict[str, int] = field(default_factory=lambda: {"train": 2, "eval": 1})
    # ... or existing splits, e.g. {"train": "train/*", "eval": "eval/*"} (overrides the above).
    split_patterns: dict[str, str] = field(default_factory=dict)
    schema_path: str = "schemas/taxi_schema.pbtxt"

    pipeline_root: str = "build/pipeline_root"
    metadata_path: str = "build/metadata.sqlite"
    serving_dir: str = "build/serving"
    model_name: str = "model"
    keep_versions: int = 5  # newest model versions kept in serving_dir

    # InfraValidator loads the candidate into a model server and sends it TF Serving
    # requests built from eval examples before anything is pushed. Where that server runs:
    #   "local":        a loopback server speaking TF Serving's gRPC API (package serving/),
    #                   a separate process on 127.0.0.1; needs no Docker;
    #   "local_docker": TFX's stock runner, the tf_serving_image container on local Docker;
    #   "kubernetes":   TFX's stock runner, a tf_serving_image pod (what Kubeflow uses).
    infra_validator_runner: str = "local"
    tf_serving_image: str = "tensorflow/serving:2.20.0"  # IMAGE:TAG or IMAGE@sha256:DIGEST
    infra_validation_examples: int = 8  # eval examples sent per signature (also the warm-up file)
    infra_validation_tries: int = 3  # TFX retries a failed validation this often
    infra_validation_timeout_s: int = 300  # per try: the model must load within this
    # `make serve` / `python -m serving serve`: TF Serving's REST and gRPC ports.
    serving_rest_port: int = 8501
    serving_grpc_port: int = 8500

    train_steps: int = 1000
    eval_steps: int = 100
    per_replica_batch_size: int = 64
    # CPU-only hosts: split the CPU into this many logical devices for MirroredStrategy.
    cpu_replicas: int = 1
    hidden_units: list[int] = field(default_factory=lambda: [64, 32, 16])
    learning_rate: float = 1e-3

    # "--direct_running_mode=auto": in-process for small input, a worker per core above
    # beam_parallel_input_mb of (compressed) input; see pipeline/beam.py.
    beam_args: list[str] = field(default_factory=lambda: ["--runner=FnApiRunner", "--direct_running_mode=auto"])
    beam_parallel_input_mb: float = 32.0
    enable_cache: bool = True
    # Local runs: at most this many nodes whose inputs are ready run at once (1: one after
    # another, as TFX's LocalDagRunner; pipeline/concurrent_runner.py).
    parallel_nodes: int = 3
    # Stop before Transform when ExampleValidator finds anomalies (False: warn and go on).
    fail_on_anomalies: bool = True

    # What to learn (modeling/roles.py): the label, the task ("auto": from the label's type
    # and domain in the schema), the features (default: every schema feature but the
    # label and exclude_features) and roles that override the inferred ones.
    label: str = ""
    task: str = "auto"
    positive_class: str = ""  # binary labels stored as strings (or one class against the rest)
    features: list[str] = field(default_factory=list)
    exclude_features: list[str] = field(default_factory=list)
    feature_roles: dict[str, str] = field(default_factory=dict)
    # A module with label(inputs) (and TASK, SOURCES) for a label no schema can describe.
    hook: str = ""
    vocab_size: int = 1000  # most frequent values kept per string / integer category
    oov_buckets: int = 1  # ids shared by the values beyond them
    quantile_buckets: int = 10  # for features with the role "bucketized"

    slicing_features: list[str] = field(default_factory=list)
    slicing_crosses: list[list[str]] = field(default_factory=list)
    fairness_thresholds: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    # Gates by metric name (metrics/gates.py; empty: the task's defaults): bounds on the
    # whole eval set, e.g. { auc = { min = 0.7 } }, and how much worse than the last
    # blessed model a metric may get, e.g. { auc = 0.01 }.
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    max_drop: dict[str, float] = field(default_factory=dict)
    # Slices with fewer eval examples are flagged as uncertain in the report.
    small_slice_examples: int = 50

    # EdgeExport (docs/edge.md): LiteRT models of the trained model, float and int8, each
    # published in the pushed version's assets.extra/litert/ while its headline metrics on
    # the eval split are within edge_max_drop of the SavedModel's (empty: the task's
    # default; error metrics may rise by that much), e.g. { auc = 0.005 }.
    edge_export: bool = True
    edge_max_drop: dict[str, float] = field(default_factory=dict)
    edge_representative_examples: int = 1000  # training examples that calibrate int8

    # Kubeflow: the pipeline image every task runs in (see Dockerfile) ...
    image: str = "taxi-tfx-pipeline:latest"
    # ... the Trainer pod's resources (0 = the cluster's default) ...
    trainer_cpu: float = 0.0
    trainer_memory_gb: float = 0.0
    trainer_gpus: int = 0
    trainer_gpu_type: str = "nvidia.com/gpu"
    # ... the Beam arguments of every Beam task there (empty: the same as beam_args) ...
    kubeflow_beam_args: list[str] = field(default_factory=list)
    # ... and where the project lives inside the image (the Dockerfile's WORKDIR): relative
    # paths in a compiled spec point there.
    image_workdir: str = "/pipeline"

    # Where the Beam components run their Beam work (docs/scale-out.md): "direct" (in the
    # component's own process or pod, with beam_args / kubeflow_beam_args), "dataflow", or
    # through Beam's PortableRunner: "flink", "spark", "portable" (any Beam job service).
    # beam_runners sets components apart by id, e.g. {Evaluator = "direct"}.
    beam_runner: str = "direct"
    beam_runners: dict[str, str] = field(default_factory=dict)
    # Appended for every component on a non-direct runner, then per component id (e.g.
    # Dataflow's --machine_type / --max_num_workers, or --extra_package=WHEEL to stage
    # the project for workers whose image lacks it).
    beam_runner_args: list[str] = field(default_factory=list)
    beam_component_args: dict[str, list[str]] = field(default_factory=dict)
    # The SDK workers' container on Dataflow and for DOCKER workers (empty: `image`).
    beam_worker_image: str = ""
    dataflow_project: str = ""
    dataflow_region: str = ""
    dataflow_temp_location: str = ""  # gs://BUCKET/PATH: Dataflow's staging and temp files
    portable_job_endpoint: str = ""  # HOST:PORT of the Flink / Spark job server
    # DOCKER: workers run portable_environment_config (empty: beam_worker_image);
    # EXTERNAL: a worker pool at portable_environment_config (HOST:PORT);
    # PROCESS: portable_environment_config is {"command": "/opt/apache/beam/boot"}.
    portable_environment_type: str = "DOCKER"
    portable_environment_config: str = ""

    # Continuous training (docs/continuous-training.md). input_pattern may name spans with
    # {SPAN} or {YYYY}{MM}{DD}: a run reads the newest span (or `span`, if >= 0) ...
    span: int = -1
    # ... trains on the last window_spans spans up to it, and compares the span with the one
    # before: drift per model feature, L-infinity distance (categorical) or Jensen-Shannon
    # divergence (numeric) above these thresholds (0: only the schema's drift_comparators;
    # drift_thresholds sets them per feature) stops the run, or only warns.
    window_spans: int = 1
    drift_l_infinity: float = 0.0
    drift_jensen_shannon: float = 0.0
    drift_thresholds: dict[str, float] = field(default_factory=dict)
    fail_on_drift: bool = True
    # Start from the weights of the last blessed model when its inputs match (the same
    # features and roles; its vocabularies are remapped by value; its bucket boundaries may
    # have moved by at most warm_start_max_shift of their range), training warm_start_steps
    # (0: train_steps) then.
    warm_start: bool = False
    warm_start_steps: int = 0
    warm_start_max_shift: float = 0.25

    # Where a relative path is resolved; not itself a pipeline setting.
    base_dir: str = field(default=str(PROJECT_DIR), repr=False)
    # What loading the configuration decided that the user should read (e.g. a dropped
    # [dataset] table); the runners print them. Not a setting.
    notes: list[str] = field(default_factory=list, repr=False, compare=False)

    def path(self, name: str) -> str:
        """An input or output location, absolute unless it is a URI (gs://, s3://...)."""
        value = getattr(self, name)
        if "://" in value or os.path.isabs(value):
            return value
        return os.path.normpath(os.path.join(self.base_dir, value))

    def image_path(self, name: str) -> str:
        """The same location as seen from a task in the pipeline image."""
        value = getattr(self, name)
        if "://" in value or os.path.isabs(value):
            return value
        return posixpath.normpath(posixpath.join(self.image_workdir, value))

    def replace(self, **changes: Any) -> "PipelineConfig":
        return validate(dataclasses.replace(self, **changes))


INFRA_VALIDATOR_RUNNERS = ("local", "local_docker", "kubernetes")
# The components that run Beam pipelines, and what each Beam runner needs set.
BEAM_COMPONENTS = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")
_PORTABLE = ("portable_job_endpoint",)
BEAM_RUNNER_NEEDS = {
    "direct": (),
    "dataflow": ("dataflow_project", "dataflow_region", "dataflow_temp_location"),
    "flink": _PORTABLE,
    "spark": _PORTABLE,
    "portable": _PORTABLE,
}
# Which environment types need portable_environment_config (DOCKER defaults to the image).
PORTABLE_ENVIRONMENT_NEEDS_CONFIG = {"DOCKER": False, "EXTERNAL": True, "PROCESS": True, "LOOPBACK": False}
# The Evaluator derives threshold metrics from a prediction histogram of this bucket width
# (metrics/histogram.py; kept here so loading a config imports no TFMA).
THRESHOLD_STEP = 1e-4
FIELD_TYPES = get_type_hints(PipelineConfig)
FIELD_NAMES = tuple(f.name for f in fields(PipelineConfig) if f.name != "notes")
# Settings that point the pipeline at a data set: giving one of them on the command line
# with another value than the file's [dataset] table means "not that data set".
DATASET_KEYS = ("input_base", "schema_path", "label")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# TFX's span, version and date specs in a file pattern (tfx/components/example_gen/utils.py).
_SPAN_SPEC_RE = re.compile(r"\{SPAN(:[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")
_ANY_SPEC_RE = re.compile(r"\{(SPAN|VERSION)(:[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")


def has_spans(pattern: str) -> bool:
    """Whether a file pattern names spans ({SPAN} or {YYYY}{MM}{DD})."""
    return bool(_SPAN_SPEC_RE.search(pattern))


def glob_pattern(pattern: str) -> str:
    """A span pattern as a glob matching every span's files (for checks before a run)."""
    return _ANY_SPEC_RE.sub("*", pattern)


def _coerce(name: str, value: Any) -> Any:
    """Check (and for command-line strings, convert) one value against its declared type."""
    kind = FIELD_TYPES[name]
    origin = getattr(kind, "__origin__", kind)
    if isinstance(value, str) and kind is not str:
        value = _parse_text(name, value, origin)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif origin in (list, dict):
        ok = isinstance(value, origin)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{name}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _parse_text(name: str, text: str, origin: type) -> Any:
    """Command-line values: TOML syntax (`[1, 2]`, `{train = 2}`, `true`), or plain words."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if origin is list:
            return [t.strip() for t in text.split(",") if t.strip()]
        raise ConfigError(f"{name}: cannot parse {text!r}") from None


def validate(cfg: PipelineConfig, check_files: bool = True) -> PipelineConfig:
    for name in FIELD_NAMES:
        _coerce(name, getattr(cfg, name))
    if not _NAME_RE.match(cfg.pipeline_name):
        raise ConfigError("pipeline_name: use lower-case letters, digits, '-' or '_' (max 63)")
    if not _NAME_RE.match(cfg.model_name):
        raise ConfigError("model_name: use lower-case letters, digits, '-' or '_' (max 63)")
    for name in ("trainer_cpu", "trainer_memory_gb", "trainer_gpus"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name}: must be >= 0, got {getattr(cfg, name)}")
    if cfg.trainer_gpus and not cfg.trainer_gpu_type:
        raise ConfigError("trainer_gpu_type: needed when trainer_gpus > 0")
    if not cfg.image_workdir.startswith("/"):
        raise ConfigError(f"image_workdir: must be an absolute path, got {cfg.image_workdir!r}")
    if not cfg.image or any(c.isspace() for c in cfg.image):
        raise ConfigError(f"image: must be an image reference without spaces, got {cfg.image!r}")
    for name in (
        "train_steps",
        "eval_steps",
        "per_replica_batch_size",
        "cpu_replicas",
        "keep_versions",
        "infra_validation_examples",
        "infra_validation_tries",
        "infra_validation_timeout_s",
        "parallel_nodes",
    ):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name}: must be >= 1, got {getattr(cfg, name)}")
    if not cfg.hidden_units or any(not isinstance(u, int) or u < 1 for u in cfg.hidden_units):
        raise ConfigError(f"hidden_units: must be positive integers, got {cfg.hidden_units}")
    if not 0 < cfg.learning_rate < 1:
        raise ConfigError(f"learning_rate: must be in (0, 1), got {cfg.learning_rate}")
    for name, drop in cfg.edge_max_drop.items():
        if name not in EDGE_METRICS or not isinstance(drop, (int, float)) or drop < 0:
            raise ConfigError(
                f"edge_max_drop.{name}: a metric of {', '.join(EDGE_METRICS)} with a drop >= 0, got {drop!r}"
            )
    if cfg.edge_export and cfg.oov_buckets != 1:
        raise ConfigError(
            f"oov_buckets: the edge export needs 1 (tf.Transform hashes values into more "
            f"buckets, which a browser cannot repeat); got {cfg.oov_buckets}; or set edge_export = false"
        )
    if cfg.edge_representative_examples < 1:
        raise ConfigError(f"edge_representative_examples: must be >= 1, got {cfg.edge_representative_examples}")
    for name in ("vocab_size", "oov_buckets", "quantile_buckets"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name}: must be >= 1, got {getattr(cfg, name)}")
    if cfg.beam_parallel_input_mb < 0:
        raise ConfigError(f"beam_parallel_input_mb: must be >= 0, got {cfg.beam_parallel_input_mb}")
    if not cfg.fairness_thresholds or any(not 0 < t < 1 for t in cfg.fairness_thresholds):
        raise ConfigError(f"fairness_thresholds: each must be in (0, 1), got {cfg.fairness_thresholds}")
    off_grid = [t for t in cfg.fairness_thresholds if abs(t / THRESHOLD_STEP - round(t / THRESHOLD_STEP)) > 1e-6]
    if off_grid:
        raise ConfigError(
            f"fairness_thresholds: each must be a multiple of {THRESHOLD_STEP:g} "
            f"(the resolution of the Evaluator's prediction histogram), got {off_grid}"
        )
    _validate_serving(cfg)
    _validate_splits(cfg)
    _validate_spans(cfg)
    _validate_beam_runners(cfg)
    for name in ("pipeline_root", "metadata_path", "serving_dir", "input_base", "schema_path"):
        if not getattr(cfg, name):
            raise ConfigError(f"{name}: must not be empty")
    if check_files:
        _validate_schema_and_slices(cfg)
    return cfg


def _validate_serving(cfg: PipelineConfig) -> None:
    if cfg.infra_validator_runner not in INFRA_VALIDATOR_RUNNERS:
        raise ConfigError(
            f"infra_validator_runner: one of {', '.join(INFRA_VALIDATOR_RUNNERS)}, got {cfg.infra_validator_runner!r}"
        )
    image, tag, digest = split_image(cfg.tf_serving_image)
    if not image or not (tag or digest):
        raise ConfigError(f"tf_serving_image: IMAGE:TAG or IMAGE@DIGEST, got {cfg.tf_serving_image!r}")
    for name in ("serving_rest_port", "serving_grpc_port"):
        if not 0 <= getattr(cfg, name) <= 65535:
            raise ConfigError(f"{name}: must be a port within [0, 65535], got {getattr(cfg, name)}")


def beam_runner_of(cfg: PipelineConfig, component_id: str) -> str:
    return cfg.beam_runners.get(component_id, cfg.beam_runner)


def _validate_beam_runners(cfg: PipelineConfig) -> None:
    """Every option a chosen runner needs is set, before any component runs."""
    known = ", ".join(BEAM_RUNNER_NEEDS)
    if cfg.beam_runner not in BEAM_RUNNER_NEEDS:
        raise ConfigError(f"beam_runner: one of {known}, got {cfg.beam_runner!r}")
    for name in ("beam_runners", "beam_component_args"):
        for component in getattr(cfg, name):
            if component not in BEAM_COMPONENTS:
                raise ConfigError(f"{name}.{component}: not a Beam component (one of {', '.join(BEAM_COMPONENTS)})")
    for component, runner in cfg.beam_runners.items():
        if runner not in BEAM_RUNNER_NEEDS:
            raise ConfigError(f"beam_runners.{component}: one of {known}, got {runner!r}")
    for name, args in [("beam_runner_args", cfg.beam_runner_args)] + [
        (f"beam_component_args.{c}", a) for c, a in cfg.beam_component_args.items()
    ]:
        if not isinstance(args, list) or any(not isinstance(a, str) or not a.startswith("--") for a in args):
            raise ConfigError(f"{name}: must be a list of --flag=value Beam arguments, got {args!r}")
    used: dict[str, list[str]] = {}
    for component in BEAM_COMPONENTS:
        used.setdefault(beam_runner_of(cfg, component), []).append(component)
    for runner, components in used.items():
        for needed in BEAM_RUNNER_NEEDS[runner]:
            if not getattr(cfg, needed):
                raise ConfigError(f"{needed}: needed for the {runner} runner ({', '.join(components)})")
    if "dataflow" in used:
        for name in ("dataflow_temp_location", "pipeline_root"):
            if not getattr(cfg, name).startswith("gs://"):
                raise ConfigError(
                    f"{name}: Dataflow's workers read and write it: use gs://..., got {getattr(cfg, name)!r}"
                )
    if used.keys() & {"flink", "spark", "portable"}:
        host, _, port = cfg.portable_job_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"portable_job_endpoint: HOST:PORT of the job server, got {cfg.portable_job_endpoint!r}")
        kind = cfg.portable_environment_type
        if kind not in PORTABLE_ENVIRONMENT_NEEDS_CONFIG:
            raise ConfigError(
                f"portable_environment_type: one of {', '.join(PORTABLE_ENVIRONMENT_NEEDS_CONFIG)}, got {kind!r}"
            )
        if PORTABLE_ENVIRONMENT_NEEDS_CONFIG[kind] and not cfg.portable_environment_config:
            raise ConfigError(f"portable_environment_config: needed for portable_environment_type {kind}")
    if any(c.isspace() for c in cfg.beam_worker_image):
        raise ConfigError(
            f"beam_worker_image: must be an image reference without spaces, got {cfg.beam_worker_image!r}"
        )


def split_image(reference: str) -> tuple[str, str, str]:
    """ "tensorflow/serving:2.20.0" -> (image, tag, ""); "img@sha256:..." -> (image, "", digest)."""
    if "@" in reference:
        image, _, digest = reference.partition("@")
        return image, "", digest
    image, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the colon belonged to a registry port
        return reference, "", ""
    return image, tag, ""


def _validate_splits(cfg: PipelineConfig) -> None:
    if cfg.split_patterns:
        names = set(cfg.split_patterns)
        if not {"train", "eval"} <= names:
            raise ConfigError(f"split_patterns: needs 'train' and 'eval' splits, got {sorted(names)}")
        for split, pattern in cfg.split_patterns.items():
            if not isinstance(pattern, str) or not pattern or pattern.startswith("/") or ".." in pattern:
                raise ConfigError(f"split_patterns.{split}: must be a pattern relative to input_base")
        return
    names = set(cfg.split_ratio)
    if not {"train", "eval"} <= names:
        raise ConfigError(f"split_ratio: needs 'train' and 'eval' splits, got {sorted(names)}")
    for split, buckets in cfg.split_ratio.items():
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1:
            raise ConfigError(f"split_ratio.{split}: must be a positive integer, got {buckets!r}")
    if not cfg.input_pattern or cfg.input_pattern.startswith("/") or ".." in cfg.input_pattern:
        raise ConfigError("input_pattern: must be a file pattern relative to input_base")


def _validate_spans(cfg: PipelineConfig) -> None:
    spans = not cfg.split_patterns and has_spans(cfg.input_pattern)
    if cfg.span < -1:
        raise ConfigError(f"span: a span number >= 0, or -1 for the newest, got {cfg.span}")
    if cfg.window_spans < 1:
        raise ConfigError(f"window_spans: must be >= 1, got {cfg.window_spans}")
    if not spans and (cfg.span >= 0 or cfg.window_spans > 1):
        raise ConfigError(
            "input_pattern: span and window_spans need a pattern naming spans with {SPAN} "
            f"or {{YYYY}}{{MM}}{{DD}} (and no split_patterns), got {cfg.input_pattern!r}"
        )
    if spans and "{VERSION" in cfg.input_pattern:
        raise ConfigError("input_pattern: {VERSION} is not supported with spans here; give each span one version")
    for name in ("drift_l_infinity", "drift_jensen_shannon", "warm_start_max_shift"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise ConfigError(f"{name}: must be in [0, 1], got {getattr(cfg, name)}")
    for feature, t in cfg.drift_thresholds.items():
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t <= 1:
            raise ConfigError(f"drift_thresholds.{feature}: must be in (0, 1], got {t!r}")
    if cfg.warm_start_steps < 0:
        raise ConfigError(f"warm_start_steps: must be >= 0 (0: train_steps), got {cfg.warm_start_steps}")


def _validate_schema_and_slices(cfg: PipelineConfig) -> None:
    from components.schema import load_schema  # avoids importing TF for --help
    from metrics import gates
    from modeling.roles import PlanError
    from pipeline.plan import plan_of

    schema_path = cfg.path("schema_path")
    if "://" not in schema_path and not os.path.isfile(schema_path):
        raise ConfigError(f"schema_path: no such file: {schema_path}")
    known = {f.name for f in load_schema(schema_path).feature}
    try:
        plan = plan_of(cfg)
        gates.gates_for(plan.task, cfg.thresholds, cfg.max_drop)
    except (PlanError, gates.GateError) as e:
        raise ConfigError(str(e)) from None
    wanted = list(cfg.slicing_features) + [k for cross in cfg.slicing_crosses for k in cross]
    for key in wanted:
        if key not in known:
            raise ConfigError(f"slicing_features: {key!r} is not a feature of the schema {schema_path}")
    for key in cfg.drift_thresholds:
        if key not in known:
            raise ConfigError(f"drift_thresholds: {key!r} is not a feature of the schema {schema_path}")
    for cross in cfg.slicing_crosses:
        if len(cross) < 2:
            raise ConfigError(f"slicing_crosses: a cross needs two or more features, got {cross}")


def load_config(
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    base_dir: str | os.PathLike | None = None,
    check_files: bool = True,
) -> PipelineConfig:
    """Defaults, then the TOML file's values, then `overrides` (e.g. from `--set k=v`).

    Relative paths resolve against `base_dir`: the directory the command runs from.
    """
    values: dict[str, Any] = {}
    notes: list[str] = []
    base = Path(base_dir) if base_dir else Path.cwd()
    if config_file:
        path = Path(config_file)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        profile = data.pop("dataset", {})
        if not isinstance(profile, dict):
            raise ConfigError(f"dataset: expected a table of settings in {path}, got {profile!r}")
        values.update(data)
        values.update(_dataset_profile(profile, values, overrides or {}, path, notes))
    values.update(overrides or {})
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (known: {', '.join(FIELD_NAMES)})")
    values = {k: _coerce(k, v) for k, v in values.items()}
    values.setdefault("base_dir", str(base))
    return validate(PipelineConfig(**values, notes=notes), check_files=check_files)


def _dataset_profile(profile: dict, file_values: dict, overrides: dict, path: Path, notes: list[str]) -> dict:
    """The file's [dataset] table: settings that belong to one data set (its label, hook,
    roles, slices, gates). They apply unless the command line points the pipeline at
    another data set, so that the bundled data's settings never leak into someone else's."""
    unknown = sorted(set(profile) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"dataset.{unknown[0]}: unknown setting")
    for key in DATASET_KEYS:
        if key in overrides:
            given = str(overrides[key]).strip()
            theirs = profile.get(key, file_values.get(key))
            if theirs is None or given != str(theirs):
                dropped = sorted(k for k in profile if k not in overrides)
                notes.append(
                    f"{key} is set on the command line, so the [dataset] settings of {path.name} "
                    f"(for {profile.get('input_base', 'its data')}) are not applied: "
                    f"{', '.join(dropped)}"
                )
                return {}
    return profile


def with_dataset_applied(config_file: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """A copy of `config_file` whose [dataset] table is top-level: for running the same data
    set from another place (a sample of it, a benchmark's copy), where pointing input_base
    elsewhere would otherwise drop that table."""
    with open(config_file, "rb") as f:
        data = tomllib.load(f)
    values = {**{k: v for k, v in data.items() if k != "dataset"}, **data.get("dataset", {})}
    path = Path(out_dir) / Path(config_file).name
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    return path


def _toml(value: Any) -> str:
    """TOML for the values a configuration holds: strings, numbers, booleans, lists, tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["train_steps=10", "beam_args=[...]"]` -> {"train_steps": "10", ...} (coerced later)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
