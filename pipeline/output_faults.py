"""Operating-system faults on the pipeline's outputs, told in one line.

A full disk, a read-only mount, a missing permission or a file where a directory should
be surface from deep inside TFX, Beam, TensorFlow, SQLite or shutil, each in its own
words (a failed copy of a model directory is a list of tuples thousands of characters
long). Before a run every output location is tried with a small real write, so most
faults stop the run before anything starts; a fault during the run (a disk that fills
up) is found in the exception and told the same way: which output, which path, what is
wrong and what to do.

Stdlib only: it runs before TensorFlow is imported.
"""

from __future__ import annotations

import errno as E
import os
import re
import shutil

from pipeline.config import PipelineConfig


class OutputError(OSError):
    """An output location cannot be written; the message is the one line to show."""


def log_dir(cfg: PipelineConfig) -> str:
    """Where the local runner writes its log files: beside the pipeline root."""
    return os.path.join(os.path.dirname(cfg.path("pipeline_root")), "logs")


def outputs(cfg: PipelineConfig) -> list[tuple[str, str, str, bool]]:
    """(what, path, setting, is a directory) for every local output location."""
    found = [
        ("the log directory", log_dir(cfg), "pipeline_root", True),
        # The run lock and the input-check memo sit beside the root, in its parent.
        ("the pipeline root's directory", os.path.dirname(cfg.path("pipeline_root")), "pipeline_root", True),
        ("the pipeline root", cfg.path("pipeline_root"), "pipeline_root", True),
        ("the metadata store", cfg.path("metadata_path"), "metadata_path", False),
        ("the serving directory", os.path.join(cfg.path("serving_dir"), cfg.model_name), "serving_dir", True),
    ]
    return [o for o in found if "://" not in o[1]]


def check_outputs(cfg: PipelineConfig) -> None:
    """Writes (and removes) a small file in every output location; OutputError on the first
    that fails. Creates the output directories, as the run would."""
    for what, path, setting, is_dir in outputs(cfg):
        try:
            if is_dir:
                _try_directory(path)
            else:
                _try_file(path)
        except OSError as e:  # named by the location; the cause names a file in the way
            raise OutputError(fault_line(e.errno, path, cfg, what, setting)) from None


def _try_directory(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(E.ENOTDIR, os.strerror(E.ENOTDIR), path)
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".write-check-{os.getpid()}")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(probe)


def _try_file(path: str) -> None:
    """The file's directory takes new files (SQLite adds a journal beside the store), and
    the file, if it is there, opens for writing."""
    if os.path.isdir(path):
        raise OSError(E.EISDIR, os.strerror(E.EISDIR), path)
    _try_directory(os.path.dirname(path))
    if os.path.exists(path):
        with open(path, "r+b"):
            pass


_CAUSES = {
    E.ENOSPC: ("no space left on the device", "free space on that file system"),
    E.EDQUOT: ("disk quota exceeded", "free space within the quota or raise it"),
    E.EACCES: ("permission denied for user {user}", "give user {user} write access to it"),
    E.EPERM: ("operation not permitted for user {user}", "give user {user} write access to it"),
    E.EROFS: ("read-only file system", "mount it read-write"),
    E.ENOTDIR: ("{blocker} is a file, not a directory", "move or remove that file"),
    E.EEXIST: ("{blocker} is a file, not a directory", "move or remove that file"),
    E.EISDIR: ("it is a directory, not a file", "move or remove that directory"),
}
# How other layers word the same faults (TensorFlow's file system, SQLite via ML Metadata).
_TEXTS = [
    (re.compile(r"No space left on device", re.I), E.ENOSPC),
    (re.compile(r"Disk quota exceeded", re.I), E.EDQUOT),
    (re.compile(r"Read-only file system", re.I), E.EROFS),
    (re.compile(r"Permission denied", re.I), E.EACCES),
    (re.compile(r"Not a directory", re.I), E.ENOTDIR),
    (re.compile(r"Is a directory", re.I), E.EISDIR),
]
# SQLite's words name no file; ML Metadata's store is the only SQLite database here.
_SQLITE_TEXTS = [
    (re.compile(r"database or disk is full|SQLITE_FULL", re.I), E.ENOSPC),
    (re.compile(r"readonly database|SQLITE_READONLY", re.I), E.EROFS),
    (re.compile(r"unable to open database file|SQLITE_CANTOPEN", re.I), E.EACCES),
]
METADATA = "<metadata store>"
_PATH = re.compile(r"(/[^\s'\",;:()\[\]]+)")


def _user() -> str:
    import pwd

    uid = os.geteuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _blocker(path: str) -> str:
    """The nearest existing ancestor of `path` (or itself) that is not a directory."""
    p = os.path.abspath(path)
    while p != os.path.dirname(p):
        if os.path.lexists(p) and not os.path.isdir(p):
            return p
        p = os.path.dirname(p)
    return path


def which_output(path: str, cfg: PipelineConfig) -> tuple[str, str]:
    """(what, setting) of the output `path` lies in: the deepest location containing it."""
    best = ("an output location", "pipeline_root")
    best_len = -1
    p = os.path.abspath(path)
    for what, location, setting, _ in outputs(cfg):
        location = os.path.abspath(location)
        if (p == location or p.startswith(location.rstrip("/") + "/")) and len(location) > best_len:
            best, best_len = (what, setting), len(location)
    if best_len < 0 and p.startswith(os.path.abspath(os.path.dirname(cfg.path("metadata_path"))) + "/"):
        best = ("the metadata store", "metadata_path")
    return best


def fault_line(
    code: int | None, path: str, cfg: PipelineConfig, what: str | None = None, setting: str | None = None
) -> str:
    if what is None or setting is None:
        what, setting = which_output(path, cfg)
    elsewhere = (
        "move the pipeline root (the logs go beside it)" if what == "the log directory" else "use another location"
    )
    return _line(code, path, what, f"{elsewhere}: --set {setting}=PATH")


def _line(code: int | None, path: str, what: str, elsewhere: str) -> str:
    cause, action = _CAUSES.get(code, (os.strerror(code) if code else "it cannot be written", "fix that"))
    blocker = _blocker(path)
    cause, action = (s.format(user=_user(), blocker=blocker) for s in (cause, action))
    return f"cannot write {what} {path}: {cause}; {action}, or {elsewhere}"


def describe_report_fault(exc: BaseException, out_dir: str) -> str | None:
    """The one line for an OS fault writing the slice report into `out_dir` (`make report`)."""
    found = find_fault(exc)
    if not found:
        return None
    code, path = found
    return _line(
        code, path if path and path != METADATA else out_dir, "the report directory", "write it elsewhere: --out DIR"
    )


def find_fault(exc: BaseException) -> tuple[int, str | None] | None:
    """(errno, path or None) of the first OS fault in an exception, its causes and contexts,
    whatever layer raised it."""
    seen, queue = set(), [exc]
    while queue:
        e = queue.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list):
            for item in e.args[0]:  # shutil.copytree: [(src, dst, str(why)), ...]
                if isinstance(item, tuple) and len(item) == 3:
                    found = _from_text(str(item[2]))
                    if found:  # the destination: the message may name either file
                        return found[0], item[1]
        if isinstance(e, OSError) and e.errno in _CAUSES:
            return e.errno, e.filename
        found = _from_text(str(e))
        if found:
            return found
        queue += [e.__cause__, e.__context__]
    return None


def _from_text(text: str) -> tuple[int, str | None] | None:
    for pattern, code in _TEXTS:
        if pattern.search(text):
            paths = _PATH.findall(text)
            return code, paths[0] if paths else None
    for pattern, code in _SQLITE_TEXTS:
        if pattern.search(text):
            return code, METADATA
    return None


def describe(exc: BaseException, cfg: PipelineConfig) -> str | None:
    """The one line for an OS fault on an output inside `exc`, or None if there is none."""
    found = find_fault(exc)
    if not found:
        return None
    code, path = found
    if path == METADATA:
        path = cfg.path("metadata_path")
    return fault_line(code, path or cfg.path("pipeline_root"), cfg)
