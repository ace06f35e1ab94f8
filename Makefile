# Every target runs inside the project's runtime (bin/runtime), built on first use.
RUNTIME := bin/runtime
PY := $(RUNTIME) run python
CONFIG ?= configs/local.toml
ARGS ?=

.PHONY: run test test-fast bench report notebooks runtime shell lock data clean clean-runtime

run: ## the whole DAG locally on the bundled data
	$(PY) local_runner.py --config $(CONFIG) $(ARGS)

test: ## every test, the end-to-end DAG included (what CI runs)
	$(RUNTIME) run python -m pytest $(ARGS)

test-fast: ## unit tests only
	$(RUNTIME) run python -m pytest -m "not e2e" $(ARGS)

bench: ## benchmark vs TFX's taxi example and plain TF (BENCH_SIZES=15k for a quick run; see README)
	$(PY) -m benchmarks $(ARGS)

report: ## (re)write the slice report of the latest run into build/report/
	$(PY) -m reporting --config $(CONFIG)

notebooks: ## execute the notebooks against the latest run into build/notebooks/
	$(PY) notebooks/execute.py build/notebooks

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
