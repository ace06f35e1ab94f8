"""Full disks, read-only mounts, missing permissions and files in the way, on every output.

Real faults, made small: tmpfs mounts of a few KB (full) or read-only, and a process that
drops root for permission faults (the tests run as root, which no permission stops).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from pipeline.config import load_config
from pipeline.output_faults import OutputError, check_outputs, describe
from tests.taxi_sample import PROJECT_DIR, TAXI_TOML

NOBODY = 65534
OUTPUTS = {  # setting -> (what the message calls it, the location made faulty, --set value)
    "logs": ("the log directory", "logs", None),
    "pipeline_root": ("the pipeline root", "root", "root"),
    "metadata_path": ("the metadata store", "meta", "meta/metadata.sqlite"),
    "serving_dir": ("the serving directory", "serving", "serving"),
}
CAUSES = {
    "full": (r"no space left on the device", r"free space on that file system"),
    "read-only": (r"read-only file system", r"mount it read-write"),
    "file": (r"\S+ is a file, not a directory", r"move or remove that file"),
    "permission": (
        r"permission denied for user nobody \(uid 65534\)",
        r"give user nobody \(uid 65534\) write access to it",
    ),
}


def mount_tmpfs(path, size: str = "64k", read_only: bool = False) -> None:
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root in a mount namespace): {proc.stderr.strip()}")


def fill(path) -> None:
    """Writes into `path` until its file system is full."""
    with open(os.path.join(path, "filler"), "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())


@pytest.fixture
def workdir():
    """A directory every user may write in (permission faults run as nobody); mounts inside
    are undone afterwards."""
    path = tempfile.mkdtemp(prefix="faults-out-", dir="/tmp")
    os.chmod(path, 0o777)
    yield path
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(path)]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", m], check=False)
    shutil.rmtree(path, ignore_errors=True)


def config_for(base: str):
    return load_config(
        TAXI_TOML,
        overrides={
            "pipeline_root": os.path.join(base, "root"),
            "metadata_path": os.path.join(base, "meta", "metadata.sqlite"),
            "serving_dir": os.path.join(base, "serving"),
        },
        base_dir=PROJECT_DIR,
        check_files=False,
    )


def make_fault(base: str, location: str, fault: str) -> None:
    path = os.path.join(base, location)
    if fault == "full":
        mount_tmpfs(path, "64k")
        fill(path)
    elif fault == "read-only":
        mount_tmpfs(path, read_only=True)
    elif fault == "file":
        with open(path, "w") as f:
            f.write("in the way\n")
    elif fault == "permission":
        os.makedirs(path)
        os.chmod(path, 0o755)  # root's; nobody may not write


# Run from the project's root: `python -c` puts the working directory on the import path.
CHECK_AS_NOBODY = """
import sys
from pipeline.config import load_config
from pipeline.output_faults import OutputError, check_outputs
cfg = load_config({taxi!r}, overrides={overrides!r}, base_dir={project!r}, check_files=False)
try:
    check_outputs(cfg)
except OutputError as e:
    print(e)
    sys.exit(2)
"""


def check_message(base: str, fault: str) -> str:
    cfg = config_for(base)
    if fault != "permission":
        with pytest.raises(OutputError) as caught:
            check_outputs(cfg)
        return str(caught.value)
    overrides = {k: getattr(cfg, k) for k in ("pipeline_root", "metadata_path", "serving_dir")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHECK_AS_NOBODY.format(project=str(PROJECT_DIR), overrides=overrides, taxi=str(TAXI_TOML)),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("fault", list(CAUSES))
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_each_fault_on_each_output_is_one_line_before_the_run(workdir, output, fault):
    what, location, _ = OUTPUTS[output]
    make_fault(workdir, location, fault)
    message = check_message(workdir, fault)
    print(f"[{output}/{fault}] {message}")
    cause, action = CAUSES[fault]
    setting = "pipeline_root" if output == "logs" else output
    path = re.escape(os.path.join(workdir, location))
    path += {"metadata_path": "/metadata.sqlite", "serving_dir": "/taxi_tips"}.get(output, "")
    elsewhere = "move the pipeline root \\(the logs go beside it\\)" if output == "logs" else "use another location"
    assert re.fullmatch(
        rf"cannot write {what} {path}: {cause}; {action}, or {elsewhere}: --set {setting}=PATH", message
    ), message
    assert "\n" not in message and len(message) < 400
    if fault == "file":
        assert f"{os.path.join(workdir, location)} is a file" in message
    # Nothing of the probe is left behind in the locations that were writable.
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(workdir) for f in files if f.startswith(".write-check")]
    assert leftovers == []


def test_a_healthy_set_of_outputs_passes_and_is_created(workdir):
    cfg = config_for(workdir)
    check_outputs(cfg)
    for path in ("logs", "root", "meta", "serving/taxi_tips"):
        assert os.path.isdir(os.path.join(workdir, path))
    assert not os.path.exists(cfg.path("metadata_path"))  # the store itself is made by the run


def test_a_metadata_store_that_is_a_directory(workdir):
    os.makedirs(os.path.join(workdir, "meta", "metadata.sqlite"))
    with pytest.raises(
        OutputError,
        match=r"cannot write the metadata store \S+/meta/metadata.sqlite: it is a "
        r"directory, not a file; move or remove that directory",
    ):
        check_outputs(config_for(workdir))


# Faults during a run: the real errors of each writer, found in whatever wraps them.


def test_a_push_into_a_full_disk_leaves_no_version_and_is_one_line(workdir):
    from serving.layout import publish, versions

    model = os.path.join(workdir, "model")
    os.makedirs(os.path.join(model, "variables"))
    with open(os.path.join(model, "saved_model.pb"), "wb") as f:
        f.write(os.urandom(1 << 20))  # more than the disk holds
    base = os.path.join(workdir, "serving", "taxi_tips")
    mount_tmpfs(os.path.join(workdir, "serving"), "256k")
    with pytest.raises(Exception) as caught:
        publish(model, base)
    line = describe(caught.value, config_for(workdir))
    assert line.startswith(f"cannot write the serving directory {base}/")
    assert (
        ": no space left on the device; free space on that file system, or use another location: "
        "--set serving_dir=PATH" in line
    )
    assert len(line) < 400
    assert versions(base) == [] and os.listdir(base) == []  # no version, no half-copied staging


def test_examples_into_a_full_pipeline_root_are_one_line(workdir, tmp_path):
    import tensorflow as tf
    from tfx.proto import example_gen_pb2

    from components import example_gen

    records = []
    for _ in range(3000):
        e = tf.train.Example()
        e.features.feature["x"].bytes_list.value.append(os.urandom(64))
        records.append(e.SerializeToString())
    os.makedirs(tmp_path / "in")
    with tf.io.TFRecordWriter(str(tmp_path / "in" / "a")) as w:
        for r in records:
            w.write(r)
    mount_tmpfs(os.path.join(workdir, "root"), "64k")
    with pytest.raises(Exception) as caught:
        example_gen.generate_splits(
            str(tmp_path / "in"),
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="a", pattern="*")]),
            example_gen_pb2.Output(
                split_config=example_gen_pb2.SplitConfig(
                    splits=[example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1)]
                )
            ),
            example_gen_pb2.FORMAT_TF_EXAMPLE,
            lambda name: os.path.join(workdir, "root", "ExampleGen", name),
            1,
        )
    line = describe(caught.value, config_for(workdir))
    assert re.match(
        rf"cannot write the pipeline root {re.escape(workdir)}/root/ExampleGen/train\S*: no space left "
        r"on the device; free space on that file system, or use another location: --set pipeline_root=PATH$",
        line,
    ), line


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_metadata_store_faults_during_a_run_are_one_line(workdir, fault):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    cfg = config_for(workdir)
    path = cfg.path("metadata_path")
    mount_tmpfs(os.path.dirname(path), "512k")

    def store():
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = path
        return metadata_store.MetadataStore(config)

    kind = metadata_store_pb2.ArtifactType(name="Blob")
    kind.properties["text"] = metadata_store_pb2.STRING
    type_id = store().put_artifact_type(kind)
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", os.path.dirname(path)], check=True)
    with pytest.raises(Exception) as caught:
        s = store()
        for _ in range(10_000):
            a = metadata_store_pb2.Artifact(type_id=type_id, uri="/x")
            a.properties["text"].string_value = "x" * 4096
            s.put_artifacts([a])
    line = describe(caught.value, cfg)
    cause = "no space left on the device" if fault == "full" else "read-only file system"
    assert line is not None, repr(caught.value)
    assert line.startswith(f"cannot write the metadata store {path}: {cause}; "), line


def test_a_log_file_that_stops_taking_writes_is_reported_once(workdir, capsys):
    import logging

    from pipeline.progress import configure_logging

    logs = os.path.join(workdir, "logs")
    mount_tmpfs(logs, "64k")
    handler = configure_logging(os.path.join(logs, "run.log"))
    try:
        for i in range(200):
            logging.getLogger("tfx.noise").info("%d %s", i, "x" * 1000)
        assert handler.error is not None and handler.error.errno == errno.ENOSPC
        line = describe(handler.error, config_for(workdir))
        assert line.startswith(f"cannot write the log directory {logs}/run.log: no space left on the device"), line
        assert "Logging error" not in capsys.readouterr().err  # no traceback per record
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_unrelated_errors_are_not_called_os_faults(workdir):
    assert describe(ValueError("bad value 3"), config_for(workdir)) is None
    assert describe(json.JSONDecodeError("x", "y", 0), config_for(workdir)) is None


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_report_that_cannot_be_written_leaves_the_old_one_whole(workdir, fault):
    from pipeline.output_faults import describe_report_fault
    from reporting.model import Curves, Report, SliceRow
    from reporting.render import write_reports

    out = os.path.join(workdir, "report")
    mount_tmpfs(out, "64k")
    report = Report(
        blessed=True,
        failures=[],
        gates=[],
        overall=SliceRow("Overall", "Overall", {"auc": 0.9}),
        specs={},
        fairness_thresholds=[0.5],
        curves=Curves(),
        baseline_curves=None,
        has_baseline=False,
        small_slice_examples=50,
    )
    with open(os.path.join(out, "report.html"), "w") as f:
        f.write("old")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("old")
    if fault == "full":
        fill(out)
    else:
        subprocess.run(["mount", "-o", "remount,ro", out], check=True)
    with pytest.raises(OSError) as caught:
        write_reports(report, out)
    line = describe_report_fault(caught.value, out)
    cause = "no space left on the device" if fault == "full" else "read-only file system"
    assert re.match(rf"cannot write the report directory {re.escape(out)}\S*: {cause}; .*--out DIR$", line), line
    assert sorted(n for n in os.listdir(out) if n != "filler") == ["report.html", "report.md"]
    assert open(os.path.join(out, "report.md")).read() == "old"


def run_cli(*sets: str, user: int | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    args = [sys.executable, str(PROJECT_DIR / "local_runner.py"), "--config", str(TAXI_TOML)]
    for s in sets:
        args += ["--set", s]
    extra = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
    return subprocess.run(args, capture_output=True, text=True, cwd=PROJECT_DIR, timeout=timeout, **extra)


def cli_sets(base: str, data_dir) -> list[str]:
    return [
        f"input_base={data_dir}",
        f"pipeline_root={base}/root",
        f"metadata_path={base}/meta/metadata.sqlite",
        f"serving_dir={base}/serving",
    ]


@pytest.mark.parametrize("fault", ["read-only", "permission"])
def test_cli_refuses_an_unwritable_output_in_one_line_and_writes_nothing(workdir, small_data_dir, fault):
    """Before TensorFlow is even imported: exit 2, one line, nothing in any output."""
    make_fault(workdir, "serving", fault)
    data = small_data_dir
    if fault == "permission":  # nobody must read the data
        data = os.path.join(workdir, "data")
        shutil.copytree(small_data_dir, data)
        os.chmod(data, 0o755)
    proc = run_cli(*cli_sets(workdir, data), user=NOBODY if fault == "permission" else None, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    cause = "read-only file system" if fault == "read-only" else r"permission denied for user nobody \(uid 65534\)"
    assert len(lines) == 1 and re.fullmatch(
        rf"output error: cannot write the serving directory {re.escape(workdir)}/serving/taxi_tips: {cause}; .*"
        r"--set serving_dir=PATH",
        lines[0],
    ), lines
    assert not os.path.exists(os.path.join(workdir, "meta", "metadata.sqlite"))
    assert not os.listdir(os.path.join(workdir, "logs"))  # not even a log file
    assert not os.listdir(os.path.join(workdir, "root"))


@pytest.mark.e2e
def test_a_disk_that_fills_up_during_the_push_then_a_rerun_after_freeing_it(workdir, small_data_dir):
    """The serving directory's disk takes the write check but not the model: the push fails
    in one line, no version is left for a model server, and once there is room the next
    run pushes (the components before the Pusher are cached)."""
    serving = os.path.join(workdir, "serving")
    mount_tmpfs(serving, "256k")
    sets = cli_sets(workdir, small_data_dir) + [
        "train_steps=50",
        "eval_steps=5",
        "thresholds={auc = {min = 0.5}}",
        "max_drop={auc = 0.5}",
    ]
    proc = run_cli(*sets)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failure = [l for l in proc.stdout.splitlines() if l.startswith("run failed in ")]
    assert len(failure) == 1 and re.fullmatch(
        rf"run failed in Pusher: cannot write the serving directory {re.escape(serving)}/taxi_tips/\S+: no space left "
        r"on the device; free space on that file system, or use another location: --set serving_dir=PATH",
        failure[0],
    ), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert os.listdir(os.path.join(serving, "taxi_tips")) == []  # nothing a model server would load

    subprocess.run(["mount", "-o", "remount,size=256m", serving], check=True)  # the fix: room
    proc = run_cli(*sets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\] Pusher\s+done", proc.stdout) and re.search(r"\] Trainer\s+cached", proc.stdout), proc.stdout
    versions = os.listdir(os.path.join(serving, "taxi_tips"))
    assert len(versions) == 1 and os.path.exists(os.path.join(serving, "taxi_tips", versions[0], "saved_model.pb"))
