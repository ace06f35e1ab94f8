"""A local DAG runner that starts each node as soon as every node upstream of it finished.

Why: TFX 1.21's LocalDagRunner launches the nodes one after another in topological order
(tfx/orchestration/local/local_dag_runner.py, "TODO(b/171319478): ... multi-threaded
execution so that independent components can be run in parallel"). After an edit to the
model code, the Evaluator and the InfraValidator (which need only the Trainer's model)
then wait for each other. This runner is LocalDagRunner's `run_with_ir` with its loop
replaced by a scheduler over the IR's `upstream_nodes` (data edges and
`add_upstream_node` edges alike): the same runtime-parameter substitution, deployment
config (runner_utils), partial-run marking and snapshot, skip handling, telemetry labels,
`launcher.Launcher` per node and "Component X is running/finished" log lines, so caching
and ML Metadata records are those LocalDagRunner would write.

Several launchers share one SQLite ML Metadata file, each with its own connection. MLMD's
SQLite source waits for a locked database only about 2 s (sqlite_metadata_source.cc,
WaitThenRetry: 10 retries of 100-300 ms, then "Concurrent writes aborted after max number
of retries"), and TFX's `Metadata` is "not thread-safe without external synchronisation"
(tfx/orchestration/metadata.py). Each MLMD call is one transaction, and MLMD's pybind
extension keeps the GIL through a call (metadata_store_extension.cc releases it nowhere),
so calls from this process's threads do not overlap today. One process-wide lock around
every MLMD call makes that a guarantee of this runner rather than of the binding; the
executors run unlocked.

A node that fails stops the run: no new node starts, the ones running finish (a Beam job
or a model server is not torn down half-way), and the first failure is raised as it was.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
import threading
from typing import Any

from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, partial_run_utils, runtime_parameter_utils, tfx_runner
from tfx.proto.orchestration import pipeline_pb2
from tfx.utils import telemetry_utils

# TFX's own logger, as LocalDagRunner logs through absl: the progress lines
# (pipeline/progress.py) and the benchmarks parse these records.
LOG = logging.getLogger("absl")
DEFAULT_MAX_PARALLEL = 3

_MLMD_LOCK = threading.RLock()


class _LockedStore:
    """An ML Metadata store whose every call holds the process's MLMD lock."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with _MLMD_LOCK:
                return attr(*args, **kwargs)

        return locked


class LockedMetadata(metadata.Metadata):
    """TFX's `Metadata` handle, its connection and every store call under one lock."""

    def __enter__(self) -> LockedMetadata:
        with _MLMD_LOCK:
            super().__enter__()
        return self

    @property
    def store(self):
        return _LockedStore(super().store)


def upstream_of(pipeline: pipeline_pb2.Pipeline) -> dict[str, set[str]]:
    """{node id: the ids of the nodes it waits for}, from the IR."""
    ids = {n.pipeline_node.node_info.id for n in pipeline.nodes}
    return {
        n.pipeline_node.node_info.id: {u for u in n.pipeline_node.upstream_nodes if u in ids} for n in pipeline.nodes
    }


class ConcurrentDagRunner(tfx_runner.IrBasedRunner):
    """LocalDagRunner, but up to `max_parallel` nodes whose upstream nodes finished run at once."""

    def __init__(self, max_parallel: int = DEFAULT_MAX_PARALLEL):
        if max_parallel < 1:
            raise ValueError(f"max_parallel: must be >= 1, got {max_parallel}")
        self.max_parallel = max_parallel

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline, run_options: pipeline_pb2.RunOptions | None = None) -> None:
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()}
        )
        deployment_config = runner_utils.extract_local_deployment_config(pipeline)
        connection_config = getattr(
            deployment_config.metadata_connection_config,
            deployment_config.metadata_connection_config.WhichOneof("connection_config"),
        )
        LOG.info("Using deployment config:\n %s", deployment_config)
        LOG.info("Using connection config:\n %s", connection_config)
        if run_options:
            LOG.info("Using run_options:\n %s", run_options)
            pr_opts = run_options.partial_run
            partial_run_utils.mark_pipeline(
                pipeline,
                from_nodes=pr_opts.from_nodes or None,
                to_nodes=pr_opts.to_nodes or None,
                snapshot_settings=pr_opts.snapshot_settings,
            )

        def launch(pipeline_node: pipeline_pb2.PipelineNode) -> None:
            # Telemetry labels are thread-local (telemetry_utils); they reach Beam's args,
            # which are part of TFX's cache key: each worker sets LocalDagRunner's.
            with telemetry_utils.scoped_labels({telemetry_utils.LABEL_TFX_RUNNER: "local"}):
                node_id = pipeline_node.node_info.id
                component_launcher = launcher.Launcher(
                    pipeline_node=pipeline_node,
                    mlmd_connection=LockedMetadata(connection_config),
                    pipeline_info=pipeline.pipeline_info,
                    pipeline_runtime_spec=pipeline.runtime_spec,
                    executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
                    custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
                )
                LOG.info("Component %s is running.", node_id)
                if pipeline_node.execution_options.run.perform_snapshot:
                    with LockedMetadata(connection_config) as mlmd_handle:
                        partial_run_utils.snapshot(mlmd_handle, pipeline)
                component_launcher.launch()
                LOG.info("Component %s is finished.", node_id)

        self._schedule(pipeline, launch)

    def _schedule(self, pipeline: pipeline_pb2.Pipeline, launch) -> None:
        """Start every node whose upstream nodes are done, in IR (topological) order, until
        all are done or one failed; then wait for those still running."""
        nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in pipeline.nodes}
        waits_for = upstream_of(pipeline)
        done: set[str] = set()
        started: set[str] = set()
        running: dict[concurrent.futures.Future, str] = {}
        failure: BaseException | None = None
        with concurrent.futures.ThreadPoolExecutor(self.max_parallel, thread_name_prefix="tfx-node") as pool:
            while True:
                ready = failure is None
                while ready:  # a skipped node is done at once, and may make others ready
                    ready = False
                    for node_id, node in nodes.items():
                        if node_id in started or not waits_for[node_id] <= done:
                            continue
                        if node.execution_options.HasField("skip"):
                            LOG.info("Skipping component %s.", node_id)
                            started.add(node_id)
                            done.add(node_id)
                            ready = True
                        elif len(running) < self.max_parallel:
                            running[pool.submit(launch, node)] = node_id
                            started.add(node_id)
                if not running:
                    break
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    node_id = running.pop(future)
                    if future.exception() is None:
                        done.add(node_id)
                    elif failure is None:
                        failure = future.exception()
        if failure is not None:
            raise failure
        left = [n for n in nodes if n not in done]
        if left:  # edges that form a cycle: no topologically sorted IR has them
            raise RuntimeError(f"nodes never became ready: {', '.join(left)}")
