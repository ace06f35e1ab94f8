"""The DAG's Beam work through Beam's PortableRunner, with SDK workers in other processes.

A Flink or Spark cluster runs the Python code of a pipeline in SDK workers that share
nothing with the process that built it but the staged files and the storage. Here Beam's
local job service plays the cluster's runner and Beam's worker pool (EXTERNAL environment)
starts each worker through portable/boot.py, the stand-in for the SDK image's boot, from
its own directory with an empty PYTHONPATH. So a worker imports the project only from the
wheel staged with the job (--extra_package), unpickles what the launcher pickled, and
reads and writes the pipeline's files itself.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from portable.cluster import LocalCluster, build_wheel
from tests.taxi_sample import run_pipeline

pytestmark = pytest.mark.e2e  # starts a job service, a worker pool and a worker per Beam job


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("dist"))


def _portable_args(cluster, *extra):
    e = cluster.endpoints()
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={e['portable_job_endpoint']}",
        "--environment_type=EXTERNAL",
        f"--environment_config={e['portable_environment_config']}",
        *extra,
    ]


def test_workers_do_not_see_the_project_unless_it_is_staged(cluster):
    """Without the wheel a worker cannot import the project: what reaches the workers in
    the DAG run below came through staging, not through this checkout."""
    import apache_beam as beam

    from pipeline.config import split_image

    with pytest.raises(Exception, match="No module named 'pipeline'"):
        with beam.Pipeline(argv=_portable_args(cluster)) as p:
            _ = p | beam.Create(["img:1"]) | beam.Map(split_image)


def test_dag_runs_on_the_portable_runner_to_a_pushed_model(cluster, wheel, tmp_path, small_data_dir):
    job_log = cluster.workdir / "job_service.log"
    done_before = job_log.read_text().count("with state DONE")
    overrides = [f"{k}={v}" for k, v in cluster.endpoints().items()] + [
        "beam_runner=portable",
        f"beam_runner_args={json.dumps(['--extra_package=' + wheel])}",
        "train_steps=100",
    ]
    states, stdout = run_pipeline(tmp_path, small_data_dir, *overrides)

    assert states["Pusher"] == "done" and "pushed to" in stdout, stdout
    assert os.listdir(tmp_path / "serving" / "taxi_tips"), "no model version pushed"
    # Each Beam component (StatisticsGen, Transform, Evaluator; the project's ExampleGen
    # streams its files in its own process, components/example_gen.py) ran as a job of the
    # job service, on workers of the pool that installed the staged project first.
    jobs = job_log.read_text().count("with state DONE") - done_before
    assert jobs >= 3, job_log.read_text()[-3000:]
    pool_log = (cluster.workdir / "worker_pool.log").read_text()
    installs = re.findall(r"installed extra package taxi_tfx_pipeline-\S+\.whl", pool_log)
    assert len(installs) >= jobs, pool_log[-3000:]
    # The Evaluator's metrics are the project's own (metrics/histogram.py), run
    # by the workers: its evaluation is there and blessed the model.
    assert "model BLESSED" in stdout
