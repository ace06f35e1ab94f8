"""Cache keys follow the code: a trainer change must not invalidate Transform."""

from __future__ import annotations

import sys

from pipeline.fingerprint import TRAINER_MODULES, TRANSFORM_MODULES, source_fingerprint


def test_fingerprint_changes_only_with_the_named_modules(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "prep.py").write_text("X = 1\n")
    (pkg / "train.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    prep, train = source_fingerprint("fakepkg.prep"), source_fingerprint("fakepkg.prep", "fakepkg.train")
    (pkg / "train.py").write_text("Y = 2\n")
    assert source_fingerprint("fakepkg.prep") == prep
    assert source_fingerprint("fakepkg.prep", "fakepkg.train") != train
    sys.modules.pop("fakepkg", None)


def test_trainer_code_is_not_part_of_the_transform_key():
    assert "modeling.trainer" in TRAINER_MODULES and "modeling.network" in TRAINER_MODULES
    assert not {"modeling.trainer", "modeling.network"} & set(TRANSFORM_MODULES)
    assert "modeling.preprocessing" in TRANSFORM_MODULES
