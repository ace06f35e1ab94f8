"""How versions land in the serving directory: whole, increasing, deduplicated, pruned."""

from __future__ import annotations

import os

from components.serving_pusher import publish, versions


def make_model(path, fingerprint: bytes):
    os.makedirs(path / "variables", exist_ok=True)
    (path / "saved_model.pb").write_bytes(b"graph" + fingerprint)
    (path / "fingerprint.pb").write_bytes(fingerprint)
    (path / "variables" / "variables.index").write_bytes(b"v")


def test_versions_increase_within_one_second(tmp_path):
    base = str(tmp_path / "serving" / "m")
    published = []
    for i in range(3):
        make_model(tmp_path / f"model{i}", f"fp{i}".encode())
        target, copied = publish(str(tmp_path / f"model{i}"), base)
        assert copied
        published.append(int(os.path.basename(target)))
    assert published == sorted(published) and len(set(published)) == 3
    assert versions(base) == published
    for v in published:  # each version is complete
        assert sorted(os.listdir(os.path.join(base, str(v)))) == ["fingerprint.pb", "saved_model.pb", "variables"]


def test_identical_model_is_not_copied_again(tmp_path):
    base = str(tmp_path / "m")
    make_model(tmp_path / "a", b"same")
    first, _ = publish(str(tmp_path / "a"), base)
    again, copied = publish(str(tmp_path / "a"), base)
    assert (again, copied) == (first, False)
    assert len(versions(base)) == 1


def test_only_newest_versions_are_kept_and_crash_leftovers_removed(tmp_path):
    base = tmp_path / "m"
    os.makedirs(base / ".staging-123-999999")  # a push that died mid-copy
    for i in range(4):
        make_model(tmp_path / f"model{i}", f"fp{i}".encode())
        publish(str(tmp_path / f"model{i}"), str(base), keep=2)
    assert len(versions(str(base))) == 2
    assert not any(n.startswith(".staging") for n in os.listdir(base))
