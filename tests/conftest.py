"""Shared fixtures: a small, real sample of the bundled data and one cold run of the DAG.

The project's root is on the import path through pyproject.toml (`pythonpath`); helpers
the tests share live in modules beside this file (taxi_sample, serving_support, synthetic).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as pipeline/__init__.py explains

from tests.taxi_sample import DATA_DIR, read_examples, run_pipeline, write_examples  # noqa: E402


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """The first 3,000 bundled examples, as the pipeline would get them from a user."""
    out = tmp_path_factory.mktemp("small_data")
    write_examples(read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=3000), out / "part-0.tfrecord.gz")
    return out


@pytest.fixture(scope="session")
def first_run(tmp_path_factory, small_data_dir):
    """One cold run of the whole DAG; the e2e, report and notebook tests read its outputs.

    Its result is read from ML Metadata right away: later tests run the pipeline again
    on the same root, and "latest" would then mean their run.
    """
    from pipeline.run_outputs import read_run_result

    workdir = tmp_path_factory.mktemp("e2e")
    states, stdout = run_pipeline(workdir, small_data_dir)
    result = read_run_result(str(workdir / "metadata.sqlite"), "taxi-tips")
    return workdir, small_data_dir, states, stdout, result
