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

    records = list(
        tf.data.TFRecordDataset(
            sorted(glob.glob(str(first.tfrecord_dir / "*.gz"))), compression_type="GZIP"
        ).as_numpy_iterator()
    )
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


def test_memory_growth_is_per_added_row_between_consecutive_sizes():
    from benchmarks.report import memory_growth

    results = _results() + [
        RunResult("ours-cold", 3_000_000, 200.0, 1400.0, 1900.0),
        RunResult("tfx-example", 3_000_000, 500.0, 9000.0, 9000.0, ok=False),
    ]
    growth = memory_growth(results)
    assert growth["ours-cold"] == [
        (1_500_000, pytest.approx(100 / (1_500_000 - 15002) * 1024)),
        (3_000_000, pytest.approx(300 / 1_500_000 * 1024)),
    ]
    assert len(growth["tfx-example"]) == 1  # a failed run is no measurement
    got = {(t.rows, t.name): t for t in targets(results)}
    target = got[(3_000_000, "peak memory growth, KB per row (ours)")]
    assert target.value == pytest.approx(0.2048) and not target.met
    assert "+0.20 up to 3,000,000" in ratios_text(results)


def test_edit_rerun_target_is_at_the_small_size():
    results = _results() + [
        RunResult("ours-edit", 15002, 14.0, 900.0, 1200.0),
        RunResult("ours-edit", 1_500_000, 140.0, 900.0, 1200.0),
    ]
    got = {(t.rows, t.name): t for t in targets(results)}
    assert got[(15002, "rerun after a model-code edit, wall seconds")].met
    assert (1_500_000, "rerun after a model-code edit, wall seconds") not in got
    assert "rerun after a model-code edit 14.0 s" in ratios_text(results)
    assert "| 15,002 | our DAG, rerun after an edit to the model code | 14.0 |" in table(results)


def test_a_contender_is_skipped_where_its_peak_would_not_fit():
    from benchmarks.__main__ import fits_in_memory

    runs = [RunResult("tfx-example", 15002, 1, 2000.0, 0), RunResult("tfx-example", 1_500_000, 1, 6000.0, 0)]
    # 6000 MB + 4000/1.485M MB per row x 1.5M more rows: ~10 GB
    assert fits_in_memory(runs, 3_000_000, available_mb=20_000)
    assert not fits_in_memory(runs, 3_000_000, available_mb=12_000)
    assert fits_in_memory([], 3_000_000, available_mb=1)
    # One size is no line: 1.2 GB at 15k is mostly fixed cost, not 100x that at 1.5M.
    assert fits_in_memory([RunResult("ours-cold", 15002, 1, 1200.0, 0)], 1_500_000, available_mb=20_000)


def test_the_edited_copy_changes_only_the_model_code(tmp_path):
    from benchmarks.__main__ import EDITED_MODULE, PROJECT_DIR, edited_copy, project_parts

    copy = edited_copy(tmp_path / "edited")
    changed = [
        p.relative_to(copy).as_posix()
        for p in copy.rglob("*.py")
        if p.read_bytes() != (PROJECT_DIR / p.relative_to(copy)).read_bytes()
    ]
    assert changed == [EDITED_MODULE]
    assert (copy / "local_runner.py").exists() and (copy / "schemas" / "taxi_schema.pbtxt").exists()
    # Every package the project has is there: a missing one fails the edited run at import.
    packages = {p.parent.name for p in PROJECT_DIR.glob("*/__init__.py")} - {
        "tests",
        "benchmarks",
        "portable",
        "notebooks",
    }
    assert packages <= set(project_parts()) and all((copy / p / "__init__.py").exists() for p in packages)


@pytest.mark.slow
def test_example_gen_alone_runs_both_executors_on_the_same_rows(tmp_path, monkeypatch):
    """The one-at-a-time ExampleGen measurement (benchmarks/example_gen_alone.py) runs TFX's
    executor and ours in their own processes; both must finish and write every row."""
    import json

    from benchmarks import example_gen_alone

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    assert example_gen_alone.main(["--size", "3000", "--out", str(tmp_path / "out")]) == 0
    got = json.loads((tmp_path / "out" / "results.json").read_text())
    assert got["rows"] == 3000
    for which in ("tfx", "ours"):
        assert got[which]["wall_s"] > 0 and got[which]["peak_pss_mb"] > 100, got
        assert got[which]["output_mb"] > 0.05, got  # 3,000 taxi rows gzip to ~0.1 MB
    # The same records, in another order and other files; ours gzips at level 1 (a fifth
    # larger, components/example_gen.py SplitWriter), TFX's at the default.
    assert 0.9 <= got["ours"]["output_mb"] / got["tfx"]["output_mb"] <= 1.5, got
