"""TF Serving's version rules on the serving directory, how a push lands there (whole,
increasing, deduplicated, pruned), crashes during a push, and rollback.

Stdlib only (serving.layout), so these run in a second; the served behaviour of the same
directories is checked against a live server in test_serving_api.py.
"""

from __future__ import annotations

import os
import shutil

import pytest

from serving import layout


def make_model(path, fingerprint: bytes, files: int = 1):
    os.makedirs(path / "variables", exist_ok=True)
    (path / "saved_model.pb").write_bytes(b"graph" + fingerprint)
    (path / "fingerprint.pb").write_bytes(fingerprint)
    for i in range(files):
        (path / "variables" / f"variables.data-{i:05d}").write_bytes(b"v" * 100)
    return path


def test_only_integer_directories_are_versions_and_the_highest_wins(tmp_path):
    for name in ("3", "12", "7", "0012a", "-5", "1.5", "v9", ".staging-99-1", "latest"):
        (tmp_path / name).mkdir()
    (tmp_path / "40").write_text("a file, not a version")
    assert layout.versions(str(tmp_path)) == [3, 7, 12]  # numeric order, not string order
    assert layout.latest_version(str(tmp_path)) == 12
    assert layout.versions(str(tmp_path / "missing")) == []
    assert layout.latest_version(str(tmp_path / "missing")) is None


def test_versions_increase_within_one_second_and_each_is_whole(tmp_path):
    base = str(tmp_path / "serving" / "m")
    published = []
    for i in range(3):
        target, copied = layout.publish(str(make_model(tmp_path / f"model{i}", f"fp{i}".encode())), base)
        assert copied
        published.append(int(os.path.basename(target)))
    assert published == sorted(published) and len(set(published)) == 3
    assert layout.versions(base) == published
    for v in published:
        assert sorted(os.listdir(os.path.join(base, str(v)))) == ["fingerprint.pb", "saved_model.pb", "variables"]


def test_an_identical_model_is_not_copied_again(tmp_path):
    base = str(tmp_path / "m")
    first, _ = layout.publish(str(make_model(tmp_path / "a", b"same")), base)
    again, copied = layout.publish(str(tmp_path / "a"), base)
    assert (again, copied) == (first, False)
    assert len(layout.versions(base)) == 1


def test_only_the_newest_versions_are_kept(tmp_path):
    base = str(tmp_path / "m")
    for i in range(4):
        layout.publish(str(make_model(tmp_path / f"model{i}", f"fp{i}".encode())), base, keep=2)
    assert len(layout.versions(base)) == 2


def test_a_half_written_staging_copy_is_never_a_version(tmp_path):
    base = tmp_path / "m"
    layout.publish(str(make_model(tmp_path / "a", b"A")), str(base))
    (base / ".staging-9999999999-4242").mkdir()
    (base / ".staging-9999999999-4242" / "saved_model.pb").write_bytes(b"trunc")
    assert len(layout.versions(str(base))) == 1


def test_crash_mid_copy_leaves_only_complete_versions_and_the_next_push_cleans_up(tmp_path, monkeypatch):
    base = tmp_path / "m"
    good, _ = layout.publish(str(make_model(tmp_path / "a", b"A")), str(base))
    copied = []
    real_copy2, real_copytree = shutil.copy2, shutil.copytree

    class Killed(BaseException):
        """The process dies mid-copy: no handler of the copier runs (a failed write, an
        Exception, is cleaned up at once: tests/test_output_faults.py)."""

    def crash_after_two_files(src, dst, *args, **kwargs):
        if len(copied) == 2:
            raise Killed("injected crash")
        copied.append(src)
        return real_copy2(src, dst, *args, **kwargs)

    def copytree(src, dst, *args, **kwargs):  # shutil recurses through the module attribute
        if args or kwargs:
            return real_copytree(src, dst, *args, **kwargs)
        return real_copytree(src, dst, copy_function=crash_after_two_files)

    monkeypatch.setattr(shutil, "copytree", copytree)
    with pytest.raises(Killed, match="injected crash"):
        layout.publish(str(make_model(tmp_path / "b", b"B", files=5)), str(base))
    monkeypatch.undo()

    assert copied, "the crash must happen mid-copy, after some files"
    leftovers = [n for n in os.listdir(base) if n.startswith(layout.STAGING_PREFIX)]
    assert leftovers  # the half copy is there ...
    assert layout.versions(str(base)) == [int(os.path.basename(good))]  # ... but is not a version
    assert sorted(os.listdir(good)) == ["fingerprint.pb", "saved_model.pb", "variables"]

    # A later push by another process (another pid) removes the leftover.
    monkeypatch.setattr(os, "getpid", lambda: 1)
    target, copied_again = layout.publish(str(tmp_path / "b"), str(base))
    assert copied_again and layout.latest_version(str(base)) == int(os.path.basename(target))
    assert not [n for n in os.listdir(base) if n.startswith(layout.STAGING_PREFIX)]
    assert len(os.listdir(os.path.join(target, "variables"))) == 5


def test_rollback_republishes_the_previous_model_as_the_new_highest_version(tmp_path):
    base = str(tmp_path / "m")
    v = [
        int(os.path.basename(layout.publish(str(make_model(tmp_path / n, n.encode())), base)[0]))
        for n in ("a", "b", "c")
    ]
    withdrawn, source, new = layout.rollback(base)
    assert (withdrawn, source) == (v[2], v[1])
    assert new > v[2] and layout.latest_version(base) == new  # TF Serving now serves b's files
    assert layout.fingerprint(os.path.join(base, str(new))) == b"b"
    assert layout.retracted(base) == {v[2]}

    # A second rollback goes further back (not to the withdrawn c).
    withdrawn, source, newer = layout.rollback(base)
    assert (withdrawn, source) == (new, v[0]) and layout.fingerprint(os.path.join(base, str(newer))) == b"a"

    # Explicit target, then nothing older left to go to.
    _, source, newest = layout.rollback(base, to_version=v[2])
    assert source == v[2] and layout.fingerprint(os.path.join(base, str(newest))) == b"c"
    with pytest.raises(layout.RollbackError, match="does not exist"):
        layout.rollback(base, to_version=123)


def test_rollback_refuses_without_an_earlier_model(tmp_path):
    base = str(tmp_path / "m")
    with pytest.raises(layout.RollbackError, match="no versions"):
        layout.rollback(base)
    layout.publish(str(make_model(tmp_path / "a", b"a")), base)
    with pytest.raises(layout.RollbackError, match="no earlier version"):
        layout.rollback(base)
    assert len(layout.versions(base)) == 1 and layout.retracted(base) == set()
