"""`make bench`: generate the data, run the four contenders on it, print and save the table.

    python -m benchmarks [--sizes 15k,150k,1.5M] [--only ours,tfx,plain] [--repeat N]
    python -m benchmarks --report build/bench/results.json    # re-print a saved run

For each size, on the same generated data and one after the other (never in parallel,
so they do not compete for the cores): our DAG on a fresh pipeline root and metadata
store (cold), our DAG again with nothing changed (rerun), TFX's own taxi example (cold),
and the plain-TensorFlow baseline. Each is a separate process whose tree's memory is
sampled while it runs (benchmarks/procmon.py). Our DAG runs three times: cold, then twice
with nothing changed (both served from the cache; the third shows the second left nothing
to redo). Wall time is the whole command, start-up included, because that is what a user
waits for.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import psutil
import tomllib

from benchmarks import datagen
from benchmarks.procmon import run_measured
from benchmarks.report import RunResult, from_json, plot, ratios_text, table, to_json
from pipeline.config import with_dataset_applied

LOG = logging.getLogger("benchmarks")
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = "15k,1.5M,3M"
# The edit-and-rerun measurement retrains and re-evaluates: from 1.5M rows up that is
# minutes of Evaluator (its cold time says how many) for a target set at 15k.
EDIT_MAX_ROWS = 150_000


def project_parts() -> list[str]:
    """What the edited copy of the project needs to run: the packages and modules that
    pyproject.toml packages (so a new package is never left out), and the data they read."""
    packaging = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = [f"{m}.py" for m in packaging["py-modules"]]
    return [*packaging["packages"], *modules, "schemas", "configs", "pyproject.toml", "setup.py", "requirements.lock"]


EDITED_MODULE = "modeling/network.py"
PROGRESS_LINE = re.compile(r"^\[\s*\d+/\d+\] (\S+)\s+(done|cached|FAILED)\s+([\d.]+) s$", re.M)
AUC_LINE = re.compile(r"^\s+auc\s+([\d.]+)", re.M)


def components_of(stdout: str) -> tuple[dict[str, float], list[str]]:
    seconds, cached = {}, []
    for name, state, secs in PROGRESS_LINE.findall(stdout):
        seconds[name] = float(secs)
        if state == "cached":
            cached.append(name)
    return seconds, cached


def score_model(model_dir: str, eval_files: list[str]) -> float | None:
    """AUC of a SavedModel's serving_default on serialized eval examples, label = tip > 20%
    of fare: one scorer for the DAG's and the TFX example's models, so their AUCs compare."""
    import numpy as np
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    if not eval_files:
        return None
    model = tf.saved_model.load(model_dir)
    serve = model.signatures["serving_default"]
    input_name = list(serve.structured_input_signature[1])[0]
    spec = {
        "tips": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        "fare": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    }
    labels, scores = [], []
    for batch in tf.data.TFRecordDataset(eval_files, compression_type="GZIP").batch(8192):
        parsed = tf.io.parse_example(batch, spec)
        labels.append((parsed["tips"] > parsed["fare"] * 0.2).numpy())
        out = serve(**{input_name: batch})
        scores.append(next(iter(out.values())).numpy().reshape(-1))
    return float(roc_auc_score(np.concatenate(labels), np.concatenate(scores)))


def edited_copy(dest: Path) -> Path:
    """A copy of the project whose model code has one more line: what a data scientist's edit
    looks like to the pipeline (the Trainer's source fingerprint changes; Transform's does not).
    A copy, so that the checkout is never left edited by a stopped benchmark."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for part in project_parts():
        src = PROJECT_DIR / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    with open(dest / EDITED_MODULE, "a") as f:
        f.write(f"\n# benchmark: an edit to the model code ({time.strftime('%Y-%m-%dT%H:%M:%S')})\n")
    return dest


def fits_in_memory(previous: list[RunResult], rows: int, available_mb: float) -> bool:
    """Whether a contender's peak, extrapolated linearly from its two largest earlier sizes,
    stays under 80% of the memory available now (with fewer sizes there is no line to draw:
    one size says nothing of how much is fixed cost, so the contender runs)."""
    done = sorted((r for r in previous if r.ok), key=lambda r: r.rows)[-2:]
    if len(done) < 2:
        return True
    a, b = done
    expected = b.peak_pss_mb + (b.peak_pss_mb - a.peak_pss_mb) / (b.rows - a.rows) * (rows - b.rows)
    return expected <= 0.8 * available_mb


def newest(pattern: str) -> str | None:
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    return found[-1] if found else None


class Bench:
    def __init__(self, out_dir: Path, repeat: int):
        self.out_dir = out_dir
        self.repeat = repeat
        self.logs = out_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _measure(
        self, system: str, rows: int, cmd: list[str], fresh: list[Path] = (), cwd: Path = PROJECT_DIR
    ) -> tuple[RunResult, str]:
        """Run `cmd` `repeat` times (each from `fresh` directories removed) and keep the fastest."""
        best = None
        for attempt in range(self.repeat):
            for d in fresh:
                shutil.rmtree(d, ignore_errors=True)
            LOG.info(
                "%s, %s rows%s: %s",
                system,
                f"{rows:,}",
                f" (try {attempt + 1}/{self.repeat})" if self.repeat > 1 else "",
                " ".join(cmd[1:4]) + " ...",
            )
            usage, stdout = run_measured(cmd, log_path=str(self.logs / f"{system}-{rows}-{attempt}.log"), cwd=str(cwd))
            comps, cached = components_of(stdout)
            result = RunResult(
                system=system,
                rows=rows,
                wall_s=round(usage.wall_s, 2),
                peak_pss_mb=round(usage.peak_pss_mb, 1),
                peak_rss_mb=round(usage.peak_rss_mb, 1),
                components=comps,
                cached=cached,
                ok=usage.returncode == 0,
                extra={"peak_processes": usage.peak_processes, "samples": usage.samples},
            )
            LOG.info(
                "  -> %.1f s, peak PSS %.0f MB%s",
                result.wall_s,
                result.peak_pss_mb,
                "" if result.ok else f", FAILED (exit {usage.returncode}; log {self.logs})",
            )
            if best is None or (result.ok and result.wall_s < best[0].wall_s):
                best = (result, stdout)
        return best

    def ours(self, data: datagen.BenchData, work: Path) -> list[RunResult]:
        # The bundled data's settings ([dataset] in local.toml), for the generated copy of it.
        work.parent.mkdir(parents=True, exist_ok=True)
        config = with_dataset_applied(PROJECT_DIR / "configs" / "local.toml", work.parent)
        # Every path absolute, so that the edited copy (run from elsewhere) hits the same cache.
        settings = [
            "--config",
            str(config),
            "--set",
            f"input_base={data.tfrecord_dir}",
            "--set",
            f"schema_path={PROJECT_DIR / 'schemas' / 'taxi_schema.pbtxt'}",
            "--set",
            f"pipeline_root={work}/root",
            "--set",
            f"metadata_path={work}/metadata.sqlite",
            "--set",
            f"serving_dir={work}/serving",
        ]
        cmd = [sys.executable, str(PROJECT_DIR / "local_runner.py"), *settings]
        results = []
        cold, stdout = self._measure("ours-cold", data.rows, cmd, fresh=[work])
        if cold.ok:
            m = AUC_LINE.search(stdout)
            cold.extra["auc_tfma"] = float(m.group(1)) if m else None
            cold.auc = score_model(
                newest(f"{work}/root/Trainer/model/*/Format-Serving"),
                sorted(glob.glob(f"{newest(f'{work}/root/ImportExampleGen/examples/*')}/Split-eval/*")),
            )
        results.append(cold)
        for system in ("ours-rerun", "ours-third"):
            again, _ = self._measure(system, data.rows, cmd)
            again.auc = cold.auc
            results.append(again)
        if cold.ok and data.rows <= EDIT_MAX_ROWS:
            copy = edited_copy(work.parent / "edited-project")
            edit, stdout = self._measure(
                "ours-edit", data.rows, [sys.executable, str(copy / "local_runner.py"), *settings], cwd=copy
            )
            m = AUC_LINE.search(stdout)
            edit.extra["auc_tfma"] = float(m.group(1)) if m else None
            results.append(edit)
        return results

    def tfx_example(self, data: datagen.BenchData, work: Path) -> RunResult:
        cmd = [sys.executable, "-m", "benchmarks.tfx_example", "--data-root", str(data.csv_dir), "--workdir", str(work)]
        result, _ = self._measure("tfx-example", data.rows, cmd, fresh=[work])
        if result.ok:
            result.auc = score_model(
                newest(f"{work}/pipeline_root/Trainer/model/*/Format-Serving"),
                sorted(glob.glob(f"{newest(f'{work}/pipeline_root/CsvExampleGen/examples/*')}/Split-eval/*")),
            )
        return result

    def plain(self, data: datagen.BenchData, work: Path) -> RunResult:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.plain_tf",
            "--input",
            str(data.tfrecord_dir),
            "--out",
            str(work / "model"),
        ]
        result, stdout = self._measure("plain-tf", data.rows, cmd, fresh=[work])
        m = re.search(r"^RESULT (.*)$", stdout, re.M)
        if m:
            detail = json.loads(m.group(1))
            result.auc = detail["auc"]
            result.components = detail["phases"]
            result.extra.update({k: detail[k] for k in ("train_rows", "eval_rows")})
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark our DAG against TFX's taxi example and plain TF.")
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES") or DEFAULT_SIZES,
        help=f"comma-separated row counts: 15k (the bundled sample), 150k, 1.5M, or a number "
        f"(default $BENCH_SIZES or {DEFAULT_SIZES})",
    )
    parser.add_argument("--only", default="ours,tfx,plain", help="which contenders (ours, tfx, plain)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=int(os.environ.get("BENCH_REPEAT", "1")),
        help="runs per cold measurement; the fastest is kept (default 1)",
    )
    parser.add_argument("--out", default=str(PROJECT_DIR / "build" / "bench"))
    parser.add_argument("--report", help="only re-print and re-plot a saved results.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.report:
        results, meta = from_json(Path(args.report).read_text())
        print(table(results) + "\n\n" + ratios_text(results))
        return 0

    sizes = [datagen.parse_size(s) for s in args.sizes.split(",") if s.strip()]
    only = {s.strip() for s in args.only.split(",")}
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": sizes,
        "cpus": os.cpu_count(),
        "host": platform.node(),
        "load_avg_at_start": os.getloadavg(),
        "repeat": args.repeat,
        "python": platform.python_version(),
    }
    bench = Bench(out, args.repeat)
    results: list[RunResult] = []
    for rows in sizes:
        data = datagen.ensure(rows)
        work = out / "work" / datagen.size_label(rows)
        available_mb = psutil.virtual_memory().available / 2**20
        for name, system, run in (
            ("ours", "ours-cold", bench.ours),
            ("tfx", "tfx-example", bench.tfx_example),
            ("plain", "plain-tf", bench.plain),
        ):
            if name not in only:
                continue
            if not fits_in_memory([r for r in results if r.system == system], rows, available_mb):
                LOG.info(
                    "%s, %s rows: skipped, its peak memory would not fit in the %.0f MB available",
                    system,
                    f"{rows:,}",
                    available_mb,
                )
                meta.setdefault("skipped", []).append([system, rows])
                continue
            got = run(data, work / name)
            results += got if isinstance(got, list) else [got]
            for log in (work / name).rglob("run-*.log"):  # the pipeline's own logs outlive its outputs
                shutil.copy2(log, out / "logs" / f"{name}-{rows}-{log.name}")
            shutil.rmtree(work / name, ignore_errors=True)  # GBs at 3M rows
            # Saved after every contender: a long run that is stopped still leaves its numbers.
            meta["load_avg_at_end"] = os.getloadavg()
            (out / "results.json").write_text(to_json(results, meta))
    text = table(results) + "\n\n" + ratios_text(results)
    (out / "table.md").write_text(text + "\n")
    plot(results, str(out / "bench.png"))
    print("\n" + text)
    print(f"\nsaved: {out / 'results.json'}, {out / 'table.md'}, {out / 'bench.png'}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average at start {meta['load_avg_at_start'][0]:.2f}, "
        f"at end {meta['load_avg_at_end'][0]:.2f} (timings are only comparable on a quiet machine)"
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
