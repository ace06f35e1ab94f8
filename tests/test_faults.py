"""Bad input, bad data, bad models and crashes: each is a clear message and leaves
nothing half-written; nothing bad is pushed."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from pipeline.config import load_config
from pipeline.preflight import InputError, RunLock, RunLocked, check_inputs
from tests.taxi_sample import DATA_DIR, PROJECT_DIR, TAXI_TOML, read_examples, run_pipeline, write_examples


def cfg_for(input_base, **overrides):
    overrides = {"input_base": str(input_base), "pipeline_root": os.path.join(input_base, "root"), **overrides}
    return load_config(TAXI_TOML, overrides=overrides, base_dir=PROJECT_DIR)


@pytest.fixture(scope="module")
def records():
    return read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=500)


def test_good_input_is_counted(tmp_path, records):
    write_examples(records, tmp_path / "a.tfrecord.gz")
    assert check_inputs(cfg_for(tmp_path)) == {"all": 500}


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(tmp_path, records, monkeypatch):
    from pipeline import preflight

    path = tmp_path / "a.tfrecord.gz"
    write_examples(records, path)
    assert check_inputs(cfg_for(tmp_path)) == {"all": 500}

    def must_not_read(p):
        raise AssertionError(f"read again: {p}")

    with monkeypatch.context() as m:
        m.setattr(preflight, "check_file", must_not_read)
        assert check_inputs(cfg_for(tmp_path)) == {"all": 500}

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated since the last check
    with pytest.raises(InputError, match=r"a\.tfrecord\.gz: corrupt or truncated"):
        check_inputs(cfg_for(tmp_path))


def test_truncated_gzip_names_the_file(tmp_path, records):
    write_examples(records, tmp_path / "good.tfrecord.gz")
    data = (tmp_path / "good.tfrecord.gz").read_bytes()
    (tmp_path / "bad.tfrecord.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"bad\.tfrecord\.gz: corrupt or truncated"):
        check_inputs(cfg_for(tmp_path))


def test_records_that_are_not_examples(tmp_path):
    write_examples([b"\x08\x96\x01not-an-example"] * 3, tmp_path / "x.tfrecord.gz")
    with pytest.raises(InputError, match=r"x\.tfrecord\.gz: record 0 does not parse as a tf.train.Example"):
        check_inputs(cfg_for(tmp_path))


def write_raw(records, path, compression=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type=compression)) as w:
        for r in records:
            w.write(r)


def test_gzip_zlib_and_uncompressed_files_are_all_counted(tmp_path, records):
    """By content: the names say .gz for all three."""
    write_examples(records[:100], tmp_path / "a.tfrecord.gz")
    write_raw(records[100:300], tmp_path / "b.tfrecord.gz", "ZLIB")
    write_raw(records[300:], tmp_path / "c.tfrecord.gz")
    assert check_inputs(cfg_for(tmp_path)) == {"all": 500}


def test_an_empty_example_is_counted_not_refused(tmp_path, records):
    empty = tf.train.Example().SerializeToString()
    assert empty == b""
    write_raw([empty, *records[:9], empty], tmp_path / "a.tfrecord.gz")
    assert check_inputs(cfg_for(tmp_path)) == {"all": 11}


@pytest.mark.parametrize("compression,kind", [("", "uncompressed"), ("ZLIB", "zlib"), ("GZIP", "gzip")])
def test_a_truncated_file_of_each_kind_says_where(tmp_path, records, compression, kind):
    write_raw(records[:200], tmp_path / "full", compression)
    data = (tmp_path / "full").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "t.tfrecord.gz").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(
        InputError,
        match=rf"t\.tfrecord\.gz: (corrupt or truncated {kind} file: .*|corrupt {kind} "
        rf"TFRecord file: truncated.*) after \d+ good records",
    ):
        check_inputs(cfg_for(tmp_path / "in"))


def test_a_corrupt_record_in_an_uncompressed_file(tmp_path, records):
    write_raw(records[:50], tmp_path / "x.tfrecord")
    data = bytearray((tmp_path / "x.tfrecord").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (tmp_path / "x.tfrecord").write_bytes(bytes(data))
    with pytest.raises(
        InputError,
        match=r"x\.tfrecord: corrupt uncompressed TFRecord file: a bad (data|length) "
        r"checksum after 2\d good records",
    ):
        check_inputs(cfg_for(tmp_path, input_pattern="*"))


def test_plain_text_is_not_a_tfrecord(tmp_path):
    with gzip.open(tmp_path / "t.tfrecord.gz", "wb") as f:
        f.write(b"fare,tips\n1,2\n" * 50)
    with pytest.raises(InputError, match=r"t\.tfrecord\.gz"):
        check_inputs(cfg_for(tmp_path))


def test_missing_empty_and_unmatched_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_inputs(cfg_for(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="no input files match"):
        check_inputs(cfg_for(tmp_path))  # empty directory
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(InputError, match=r"no input files match .*\*\.tfrecord\.gz"):
        check_inputs(cfg_for(tmp_path))
    write_examples([], tmp_path / "empty.tfrecord.gz")
    with pytest.raises(InputError, match="has no records"):
        check_inputs(cfg_for(tmp_path))


def test_an_empty_existing_split_is_refused(tmp_path, records):
    write_examples(records, tmp_path / "train" / "a.tfrecord.gz")
    write_examples([], tmp_path / "eval" / "a.tfrecord.gz")
    cfg = cfg_for(tmp_path, split_patterns={"train": "train/*", "eval": "eval/*"})
    with pytest.raises(InputError, match="split 'eval' has no records"):
        check_inputs(cfg)


def test_a_second_run_on_the_same_root_is_refused(tmp_path):
    cfg = cfg_for(DATA_DIR, pipeline_root=str(tmp_path / "root"))
    first = RunLock(cfg)
    first.acquire()
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        RunLock(cfg).acquire()
    first.release()
    again = RunLock(cfg)
    again.acquire()  # free once the first run ends
    again.release()


def runner(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / "local_runner.py"), "--config", str(TAXI_TOML), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=timeout,
    )


@pytest.mark.slow
def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.tfrecord.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    proc = runner(
        "--set",
        f"input_base={tmp_path / 'in'}",
        "--set",
        f"pipeline_root={tmp_path}/root",
        "--set",
        f"metadata_path={tmp_path}/m.sqlite",
    )
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "input error:" in out and "x.tfrecord.gz" in out
    assert "Traceback" not in out
    assert not (tmp_path / "m.sqlite").exists()  # refused before anything ran


def test_cli_bad_config_is_refused_before_anything_runs(tmp_path):
    proc = runner("--set", "train_steps=-5", "--set", f"pipeline_root={tmp_path}/root")
    assert proc.returncode == 2
    assert "config error: train_steps: must be >= 1" in proc.stderr
    assert not (tmp_path / "root").exists()


@pytest.mark.e2e
def test_anomalies_stop_the_run_before_transform(tmp_path, records):
    """Out-of-domain values, NaN (in 5% of the records) and infinity are each listed; the
    input mixes a gzip and an uncompressed file, both named .gz, as users' data does."""
    bad = []
    for i, r in enumerate(records):
        ex = tf.train.Example.FromString(r)
        if i % 3 == 0:
            ex.features.feature["trip_start_hour"].int64_list.value[:] = [31]  # outside 0..23
            ex.features.feature["payment_type"].bytes_list.value[:] = [b"Bitcoin"]  # not in the domain
        if i % 20 == 1:
            ex.features.feature["fare"].float_list.value[:] = [float("nan")]
        if i == 2:
            ex.features.feature["trip_miles"].float_list.value[:] = [float("inf")]
        bad.append(ex.SerializeToString())
    write_examples(bad[:250], tmp_path / "data" / "bad-0.tfrecord.gz")
    write_raw(bad[250:], tmp_path / "data" / "bad-1.tfrecord.gz")  # uncompressed
    proc = runner(
        "--set",
        f"input_base={tmp_path / 'data'}",
        "--set",
        f"pipeline_root={tmp_path}/root",
        "--set",
        f"metadata_path={tmp_path}/m.sqlite",
        "--set",
        f"serving_dir={tmp_path}/serving",
    )
    assert proc.returncode == 1, proc.stdout
    assert "input: 500 records (all)" in proc.stdout
    assert "ValidationGate" in proc.stdout and "FAILED" in proc.stdout
    assert "trip_start_hour" in proc.stdout and "payment_type" in proc.stdout
    nan_lines = [l for l in proc.stdout.splitlines() if "] fare: " in l]
    assert nan_lines and all("NaN" in l and "exact count over every example" in l for l in nan_lines), proc.stdout
    assert sum(int(re.search(r"(\d+) NaN values? \(exact", l).group(1)) for l in nan_lines) == 25
    assert re.search(r"\] trip_miles: .*1 infinite value \(exact count", proc.stdout), proc.stdout
    assert "Transform" not in proc.stdout  # never started
    assert not os.listdir(tmp_path / "serving" / "taxi_tips")  # created by the write check, empty


@pytest.mark.e2e
def test_model_below_threshold_is_not_pushed(tmp_path, small_data_dir):
    states, stdout = run_pipeline(tmp_path, small_data_dir, "thresholds={auc = {min = 0.99}}")
    assert "model NOT blessed: auc = " in stdout and "needs >= 0.9900 [Overall]" in stdout
    assert "nothing pushed" in stdout
    assert not (tmp_path / "serving" / "taxi_tips").exists() or not os.listdir(tmp_path / "serving" / "taxi_tips")
    report_md = next(l.split()[-1] for l in stdout.splitlines() if l.strip().endswith("report.md"))
    assert "NOT blessed" in open(report_md).read()


@pytest.mark.e2e
def test_killed_run_resumes_from_cache_and_concurrent_run_is_refused(tmp_path, small_data_dir):
    args = [
        sys.executable,
        str(PROJECT_DIR / "local_runner.py"),
        "--config",
        str(TAXI_TOML),
        "--set",
        f"input_base={small_data_dir}",
        "--set",
        f"pipeline_root={tmp_path}/root",
        "--set",
        f"metadata_path={tmp_path}/metadata.sqlite",
        "--set",
        f"serving_dir={tmp_path}/serving",
        "--set",
        "train_steps=3000",
        "--set",
        "eval_steps=10",
        "--set",
        "thresholds={auc = {min = 0.55}}",
    ]
    victim = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_DIR)
    deadline = time.time() + 300
    log_dir = tmp_path / "logs"
    while time.time() < deadline:  # wait until training is under way
        logs = list(log_dir.glob("*.log")) if log_dir.exists() else []
        if logs and "Component Trainer is running." in logs[0].read_text(errors="replace"):
            break
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.5)
    else:
        pytest.fail("the run never reached the Trainer")

    second = runner(*args[2:], timeout=120)  # same pipeline root, while the first holds it
    assert second.returncode == 3 and "refused: another run" in second.stdout, second.stdout

    victim.send_signal(signal.SIGKILL)
    victim.wait()

    states, stdout = run_pipeline(tmp_path, small_data_dir)
    for node in ("ImportExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "cached", stdout
    assert states["Trainer"] == "done" and states["Pusher"] == "done", stdout
    base = tmp_path / "serving" / "taxi_tips"
    assert [n for n in os.listdir(base) if not n.isdigit()] == []  # no half-written version
    for version in os.listdir(base):
        assert (base / version / "saved_model.pb").exists()
