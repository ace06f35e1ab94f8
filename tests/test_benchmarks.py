"""The benchmark's own logic: deterministic data, and the table/ratio/target arithmetic.
No timings are asserted anywhere: benchmarks measure, tests check."""

from __future__ import annotations

import glob
import hashlib

import pytest

from benchmarks import datagen
from benchmarks.report import RunResult, from_json, ratios_text, table, targets, to_json


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(glob.glob(f"{root}/**/*", recursive=True)):
        if path.endswith((".gz", ".csv")):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


@pytest.mark.slow
def test_generated_data_is_deterministic_and_reused(tmp_path):
    import tensorflow as tf

    first = datagen.ensure(20_000, tmp_path / "a")
    second = datagen.ensure(20_000, tmp_path / "b")
    assert _digest(first.root) == _digest(second.root)
    assert datagen.ensure(20_000, tmp_path / "a").root == first.root  # reused, not regenerated

    records = list(tf.data.TFRecordDataset(sorted(glob.glob(str(first.tfrecord_dir / "*.gz"))),
                                           compression_type="GZIP").as_numpy_iterator())
    assert len(records) == 20_000
    rows = (first.csv_dir / "data.csv").read_text().strip().split("\n")
    assert len(rows) == 20_001  # header + rows
    # Jittered replicas differ from the originals (they would otherwise all hash alike).
    assert len(set(records)) > 19_000


def test_parse_size():
    assert datagen.parse_size("15k") == 15002
    assert datagen.parse_size("150k") == 150_000
    assert datagen.parse_size("1.5M") == 1_500_000
    assert datagen.parse_size("2000") == 2000
    with pytest.raises(ValueError):
        datagen.parse_size("0")


def _results():
    return [
        RunResult("ours-cold", 15002, 30.0, 1000.0, 1500.0, auc=0.94, components={"Transform": 10.0}),
        RunResult("ours-rerun", 15002, 8.0, 900.0, 1200.0, auc=0.94),
        RunResult("tfx-example", 15002, 70.0, 2000.0, 3000.0, auc=0.93),
        RunResult("plain-tf", 15002, 10.0, 700.0, 900.0, auc=0.945),
        RunResult("ours-cold", 1_500_000, 100.0, 1100.0, 1600.0, auc=0.90),
        RunResult("tfx-example", 1_500_000, 250.0, 6000.0, 9000.0, auc=0.93),
        RunResult("plain-tf", 1_500_000, 15.0, 900.0, 1000.0, auc=0.93),
    ]


def test_targets_and_ratios():
    got = {(t.rows, t.name): t for t in targets(_results())}
    small = got[(15002, "wall ours/TFX example")]
    assert small.value == pytest.approx(30 / 70) and small.limit == 0.5 and small.met
    large = got[(1_500_000, "wall ours/TFX example")]
    assert large.value == pytest.approx(0.4) and large.limit == 0.35 and not large.met
    assert not got[(1_500_000, "wall ours/plain TF")].met  # 6.7x > 5x
    assert got[(1_500_000, "peak memory ours/TFX example")].met
    assert got[(15002, "rerun wall seconds")].met
    assert got[(15002, "AUC ours - plain TF")].met  # -0.005 >= -0.01
    assert not got[(1_500_000, "AUC ours - plain TF")].met  # -0.03
    growth = got[(1_500_000, "peak memory growth, KB per row (ours)")]
    assert growth.value == pytest.approx(100 / (1_500_000 - 15002) * 1024)


def test_table_and_json_round_trip():
    results = _results()
    text = table(results)
    assert "| 15,002 | our DAG, cold | 30.0 |" in text
    assert "TFX taxi example" in text
    again, meta = from_json(to_json(results, {"cpus": 2}))
    assert again == results and meta == {"cpus": 2}
    assert "ours/TFX wall 0.43x" in ratios_text(results)
