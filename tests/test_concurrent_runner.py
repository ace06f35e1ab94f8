"""The concurrent local runner on tiny real TFX pipelines: Python-function components,
real launchers, real ML Metadata on SQLite.

The components meet through files: one that must run beside another writes its start and
waits for the other's, so a runner that ran them one after another fails the test (after
a timeout) instead of passing slowly.
"""

import io
import logging
import os
import time

import pytest
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.pipeline import Pipeline
from tfx.types.standard_artifacts import Model

from pipeline.concurrent_runner import ConcurrentDagRunner
from pipeline.progress import ComponentProgress
from tests.taxi_sample import LINE

MEET_TIMEOUT_S = 60


def _mark(marks: str, name: str) -> None:
    with open(os.path.join(marks, name), "w") as f:
        f.write(repr(time.time()))


def _wait_for(marks: str, name: str) -> None:
    deadline = time.monotonic() + MEET_TIMEOUT_S
    while not os.path.exists(os.path.join(marks, name)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} never appeared: the two nodes did not run at once")
        time.sleep(0.05)


@component
def source(marks: Parameter[str], out: OutputArtifact[Model]) -> None:
    _mark(marks, "source.end")


@component
def meet(
    marks: Parameter[str],
    me: Parameter[str],
    other: Parameter[str],
    x: InputArtifact[Model],
    out: OutputArtifact[Model],
) -> None:
    _mark(marks, f"{me}.start")
    _wait_for(marks, f"{other}.start")
    _mark(marks, f"{me}.end")


@component
def fail(marks: Parameter[str], x: InputArtifact[Model], out: OutputArtifact[Model]) -> None:
    _mark(marks, "bad.start")
    raise ValueError("bad input in node 'bad'")


@component
def outlast(marks: Parameter[str], x: InputArtifact[Model], out: OutputArtifact[Model]) -> None:
    """Still running when its sibling fails: starts with it, ends seconds after it failed."""
    _wait_for(marks, "bad.start")
    time.sleep(4)
    _mark(marks, "slow.end")


@component
def join(marks: Parameter[str], a: InputArtifact[Model], b: InputArtifact[Model], out: OutputArtifact[Model]) -> None:
    _mark(marks, "join.start")


@component
def after(marks: Parameter[str], x: InputArtifact[Model], out: OutputArtifact[Model]) -> None:
    _mark(marks, "after.start")


def _pipeline(tmp_path, components) -> Pipeline:
    return Pipeline(
        pipeline_name="tiny",
        pipeline_root=str(tmp_path / "root"),
        components=components,
        enable_cache=True,
        metadata_connection_config=sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite")),
    )


def _diamond(tmp_path, marks: str) -> Pipeline:
    src = source(marks=marks).with_id("src")
    a = meet(marks=marks, me="A", other="B", x=src.outputs["out"]).with_id("A")
    b = meet(marks=marks, me="B", other="A", x=src.outputs["out"]).with_id("B")
    sink = join(marks=marks, a=a.outputs["out"], b=b.outputs["out"]).with_id("sink")
    return _pipeline(tmp_path, [src, a, b, sink])


@pytest.fixture
def progress():
    stream = io.StringIO()
    handler = ComponentProgress(["src", "A", "B", "bad", "slow", "after", "sink"], stream)
    # The runner logs through "absl" (as LocalDagRunner does); another test in this process
    # may have quietened that logger (kfp_runner.main sets it to WARNING), as local_runner's
    # configure_logging undoes. Without this the progress lines depend on test order.
    root, absl = logging.getLogger(), logging.getLogger("absl")
    levels = root.level, absl.level
    root.setLevel(logging.INFO)
    absl.setLevel(logging.INFO)
    root.addHandler(handler)
    yield handler, stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    absl.setLevel(levels[1])


def _read(marks: str, name: str) -> float:
    with open(os.path.join(marks, name)) as f:
        return float(f.read())


def _states(stream: io.StringIO) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in LINE.finditer(stream.getvalue())}


def test_independent_nodes_run_at_once_and_a_join_waits_for_both(tmp_path, progress):
    _, stream = progress
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    ConcurrentDagRunner(max_parallel=3).run(_diamond(tmp_path, marks))

    # A and B each saw the other start before they ended; the join started after both.
    assert _read(marks, "A.start") < _read(marks, "B.end") and _read(marks, "B.start") < _read(marks, "A.end")
    assert _read(marks, "join.start") > max(_read(marks, "A.end"), _read(marks, "B.end"))
    assert _read(marks, "A.start") > _read(marks, "source.end")
    assert _states(stream) == {"src": "done", "A": "done", "B": "done", "sink": "done"}, stream.getvalue()

    # The same pipeline again: every node's cached execution is found, and the progress
    # lines say so for each node although they ran on several threads.
    stream.seek(0)
    stream.truncate()
    ConcurrentDagRunner(max_parallel=3).run(_diamond(tmp_path, marks))
    assert _states(stream) == {"src": "cached", "A": "cached", "B": "cached", "sink": "cached"}, stream.getvalue()


def test_a_failing_node_stops_new_nodes_and_lets_running_ones_finish(tmp_path, progress):
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2

    handler, stream = progress
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    src = source(marks=marks).with_id("src")
    bad = fail(marks=marks, x=src.outputs["out"]).with_id("bad")
    slow = outlast(marks=marks, x=src.outputs["out"]).with_id("slow")
    after_slow = after(marks=marks, x=slow.outputs["out"]).with_id("after")
    sink = join(marks=marks, a=bad.outputs["out"], b=slow.outputs["out"]).with_id("sink")
    pipeline = _pipeline(tmp_path, [src, bad, slow, after_slow, sink])

    with pytest.raises(ValueError, match="bad input in node 'bad'"):
        ConcurrentDagRunner(max_parallel=3).run(pipeline)

    assert os.path.exists(os.path.join(marks, "slow.end"))  # the running sibling finished ...
    assert not os.path.exists(os.path.join(marks, "after.start"))  # ... but nothing new started
    assert not os.path.exists(os.path.join(marks, "join.start"))
    assert handler.failed() == "bad"
    assert _states(stream) == {"src": "done", "slow": "done", "bad": "FAILED"}, stream.getvalue()

    store = mlmd.MetadataStore(sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite")))
    by_node = {}
    for context in store.get_contexts_by_type("node"):
        for execution in store.get_executions_by_context(context.id):
            by_node[context.name.split(".")[-1]] = execution.last_known_state
    E = metadata_store_pb2.Execution
    assert by_node == {"src": E.COMPLETE, "bad": E.FAILED, "slow": E.COMPLETE}


def test_many_nodes_at_once_share_one_sqlite_metadata_store(tmp_path, progress):
    """Eight launchers at once register, resolve and publish in one SQLite file. MLMD's
    SQLite source gives up on a locked database after about 2 s ('Concurrent writes
    aborted'); the runner's lock (and, in MLMD 1.17, the GIL held through each call) keeps
    the calls from overlapping."""
    _, stream = progress
    marks = str(tmp_path / "marks")
    os.makedirs(marks)
    src = source(marks=marks).with_id("src")
    wide = [after(marks=marks, x=src.outputs["out"]).with_id(f"n{i}") for i in range(8)]
    ConcurrentDagRunner(max_parallel=8).run(_pipeline(tmp_path, [src, *wide]))
    assert stream.getvalue().count(" done ") == 9, stream.getvalue()


def test_max_parallel_must_be_positive():
    with pytest.raises(ValueError, match="max_parallel: must be >= 1"):
        ConcurrentDagRunner(max_parallel=0)
