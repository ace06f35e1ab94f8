"""Checks that run before the DAG, so bad input fails in one line that names the problem.

Without them a corrupt file surfaces as a Beam traceback from deep inside
ImportExampleGen, minutes into a run; a missing directory or a pattern that matches
nothing produces an empty split and a confusing failure two components later.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os

from components import example_gen
from pipeline.config import PipelineConfig, glob_pattern

RECORDS_PARSED_PER_FILE = 100  # every record is read; the first ones are also parsed


class InputError(ValueError):
    """The input data cannot be used; the message names the file and the problem."""


def input_files(cfg: PipelineConfig) -> dict[str, list[str]]:
    """{split or "all": files}, from the same patterns ImportExampleGen will use."""
    base = cfg.path("input_base")
    if "://" in base:
        return {}  # remote input: checked by ImportExampleGen on the cluster
    if not os.path.exists(base):
        raise InputError(f"input_base {base} does not exist")
    if not os.path.isdir(base):
        raise InputError(f"input_base {base} is not a directory")
    patterns = cfg.split_patterns or {"all": glob_pattern(cfg.input_pattern)}
    found = {}
    for split, pattern in patterns.items():
        files = sorted(f for f in glob.glob(os.path.join(base, pattern)) if os.path.isfile(f))
        if not files:
            raise InputError(
                f"no input files match {os.path.join(base, pattern)}"
                + (f" (split '{split}')" if split != "all" else "")
            )
        found[split] = files
    return found


def check_file(path: str) -> int:
    """Read every record of one TFRecord file (gzip, zlib or uncompressed, told by its
    content), with the project's ExampleGen reader; return the count.

    Every record is read and its checksums checked (a truncated file fails here, not
    minutes later in ExampleGen), but only the first ones are parsed. Not through tf.data:
    TensorFlow's readers end a gzip or zlib stream cut short without an error, as if the
    file ended there.

    An Example with no features is an Example: it is counted, and the schema's presence
    rules judge it later (ExampleValidator). A record that does not parse is an error.
    """
    count = 0
    try:
        for record in example_gen.read_records(path):
            if count < RECORDS_PARSED_PER_FILE:
                _parse(path, count, record)
            count += 1
    except example_gen.ExampleGenError as e:
        raise InputError(str(e)) from None
    return count


def _parse(path: str, index: int, raw: bytes) -> None:
    import tensorflow as tf

    try:
        tf.train.Example.FromString(raw)
    except Exception as e:  # protobuf's DecodeError
        raise InputError(
            f"{path}: record {index} does not parse as a tf.train.Example ({type(e).__name__}: {e})"
        ) from None


def beside_root(cfg: PipelineConfig, suffix: str) -> str:
    """A hidden file next to the pipeline root, named after it (one per root)."""
    root = cfg.path("pipeline_root").rstrip("/")
    return os.path.join(os.path.dirname(root), f".{os.path.basename(root)}{suffix}")


def _load_checked(path: str) -> dict[str, list[int]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def check_inputs(cfg: PipelineConfig) -> dict[str, int]:
    """Every input file is a readable TFRecord file of tf.train.Examples; no split is empty.

    A file already checked with the same size and modification time is not read again
    (reading 1.5M records is most of an unchanged rerun's time); the record is kept beside
    the pipeline root and rewritten whole, so a killed run leaves the old one.
    """
    remote_root = "://" in cfg.path("pipeline_root")
    memo_path = beside_root(cfg, ".checked-inputs.json")
    checked = {} if remote_root else _load_checked(memo_path)
    seen = {}
    counts = {}
    for split, files in input_files(cfg).items():
        total = 0
        for path in files:
            stat = os.stat(path)
            key = os.path.abspath(path)
            known = checked.get(key)
            if known and known[:2] == [stat.st_size, stat.st_mtime_ns]:
                count = known[2]
            else:
                count = check_file(path)
            seen[key] = [stat.st_size, stat.st_mtime_ns, count]
            total += count
        if total == 0:
            names = ", ".join(os.path.basename(f) for f in files[:5]) + (", ..." if len(files) > 5 else "")
            raise InputError(
                f"input for {'split ' + repr(split) if split != 'all' else 'the pipeline'} "
                f"has no records (empty: {names} under {cfg.path('input_base')})"
            )
        counts[split] = total
    if seen and seen != checked and not remote_root:
        os.makedirs(os.path.dirname(memo_path), exist_ok=True)
        tmp = f"{memo_path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(seen, f)
            os.replace(tmp, memo_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return counts


class RunLocked(RuntimeError):
    """Another run holds the pipeline root."""


class RunLock:
    """One run per pipeline root at a time: a second one is refused, not interleaved.

    Two runs on one root would write the same ML Metadata store and serving directory;
    an exclusive lock file beside the pipeline root makes the second stop with a message.
    The lock is the OS's, so a killed run releases it.
    """

    def __init__(self, cfg: PipelineConfig):
        self.path = beside_root(cfg, ".lock")
        self._file = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise RunLocked(
                f"another run ({holder}) is using this pipeline root; wait for it to finish (lock: {self.path})"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if self._file:
            self._file.close()
