# Every target runs inside the project's runtime (bin/runtime), built on first use.
RUNTIME := bin/runtime
PY := $(RUNTIME) run python
CONFIG ?= configs/local.toml
ARGS ?=
# make web: a published assets.extra/litert/ directory (default: the newest version's under build/serving)
EDGE_MODEL ?= $(shell ls -d build/serving/*/*/assets.extra/litert 2>/dev/null | sort -t/ -k4,4n | tail -1)
# make kfp-local: Beam in each task's process (the bundled sample is small; pods decide for themselves otherwise)
KFP_LOCAL_BEAM := --runner=FnApiRunner,--direct_running_mode=in_memory,--direct_num_workers=1

.PHONY: days web run run-portable schema lint format test test-fast bench bench-serving serve versions rollback report notebooks compile golden kfp-local runtime shell lock data clean clean-runtime

run: ## the whole DAG locally on the bundled data
	$(PY) local_runner.py --config $(CONFIG) $(ARGS)

days: ## a week of daily spans from the bundled data, run day by day (docs/continuous-training.md; ARGS="--days 3")
	$(PY) -m pipeline.days $(ARGS)

run-portable: ## the DAG with its Beam work on Beam's PortableRunner (local job service, SDK workers in other processes)
	$(PY) -m portable --config $(CONFIG) $(ARGS)

schema: ## infer an editable schema from your TFRecords: ARGS="--input-base DIR --label NAME --output schemas/mine.pbtxt"
	$(PY) -m pipeline.infer_schema $(ARGS)

lint: ## ruff (lint + format check) and the import layers of pyproject.toml
	$(RUNTIME) run ruff check .
	$(RUNTIME) run ruff format --check .
	$(RUNTIME) run lint-imports --no-cache

format: ## apply ruff's formatting and safe fixes
	$(RUNTIME) run ruff format .
	$(RUNTIME) run ruff check --fix .

test: lint ## the checks, then every test, the end-to-end DAG included (what CI runs)
	$(RUNTIME) run python -m pytest $(ARGS)

test-fast: ## the tests not marked e2e or slow (a few minutes): for the edit-test loop
	$(RUNTIME) run python -m pytest -m "not e2e and not slow" $(ARGS)

bench: ## benchmark vs TFX's taxi example and plain TF (BENCH_SIZES=15k for a quick run; see README)
	$(PY) -m benchmarks $(ARGS)

bench-serving: ## the model server's requests/s and p50/p99 latency beside the SavedModel in-process (needs `make run` first)
	$(PY) -m benchmarks.serving $(ARGS)

serve: ## serve the latest pushed model with TF Serving's REST (8501) and gRPC (8500) APIs; Ctrl-C stops
	$(PY) -m serving serve --config $(CONFIG) $(ARGS)

versions: ## list the model versions in the serving directory (the highest is served)
	$(PY) -m serving versions --config $(CONFIG) $(ARGS)

rollback: ## re-publish the previous model version as the new highest one (ARGS="--to VERSION" for another)
	$(PY) -m serving rollback --config $(CONFIG) $(ARGS)

report: ## (re)write the slice report of the latest run into build/report/
	$(PY) -m reporting --config $(CONFIG)

notebooks: ## execute the notebooks against the latest run into build/notebooks/
	$(PY) notebooks/execute.py build/notebooks

web: ## the browser page with the newest published edge model (or EDGE_MODEL=DIR) into build/web; npm ci from web/package-lock.json
	$(RUNTIME) run npm ci --prefix web --no-audit --no-fund
	$(PY) web/build.py build/web --model "$(EDGE_MODEL)"

compile: ## compile the Kubeflow spec (configs/kubeflow.toml) into build/pipeline.json
	$(PY) kfp_runner.py compile --config configs/kubeflow.toml --output build/pipeline.json $(ARGS)

golden: ## accept a changed Kubeflow spec into tests/golden/pipeline.json (after review)
	$(PY) kfp_runner.py compile --config configs/kubeflow.toml --output tests/golden/pipeline.json

kfp-local: ## compile with local paths, then run that spec twice here task by task, as KFP's backend would
	rm -rf build/kfp
	$(PY) kfp_runner.py compile --config $(CONFIG) --output build/kfp/pipeline.json \
	  --set image_workdir=$(CURDIR) --set pipeline_root=build/kfp/pipeline_root --set serving_dir=build/kfp/serving \
	  --set kubeflow_beam_args=$(KFP_LOCAL_BEAM)
	$(PY) kfp_runner.py run-local --spec build/kfp/pipeline.json --local-storage $(ARGS)
	$(PY) kfp_runner.py run-local --spec build/kfp/pipeline.json --local-storage $(ARGS)

runtime: ## build the runtime now (otherwise the first command does)
	$(RUNTIME) ensure

shell: ## a shell inside the runtime
	$(RUNTIME) shell

lock: ## re-resolve requirements.in into requirements.lock
	$(RUNTIME) lock

data: ## regenerate data/taxi from the CSV inside the tfx wheel
	$(PY) data/make_tfrecords.py

clean: ## remove local run outputs (build/)
	rm -rf build

clean-runtime: ## remove runtimes other than the current one
	$(RUNTIME) clean
