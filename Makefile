# Two commands do all set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install test test-slow lint demo clean

install: $(STAMP)

# Reinstall whenever the dependency list changes. The ray extra too: the tests run sweeps on a real Ray cluster.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# One test process per core (pytest-xdist), each with one intra-op thread: the test models are tiny, and most of the
# suite's time is simulator steps and process start-up, which intra-op threads do not share. The `serial` tests
# (a real Ray cluster) run after it, alone, so that no other test competes with the cluster's processes.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow and not serial" -n auto
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "serial and not slow"

# pytest exits 5 when no test is selected: no test is marked slow today, and that is not a failure.
test-slow: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow || [ $$? -eq 5 ]

# Static checks: ruff's lint rules and mypy's types (configured in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy

# cartpole_swingup at the `cpu` preset's networks and protocol (1,000 random seed steps, then DMControl-GB's burst of
# 1,000 updates), shortened to fit 10 minutes on 2 cores without native bf16: 2,000 steps (16k frames) on 48x48
# frames with batches of 64, the periodic evaluations on the training environment only (every 250 steps, 3 episodes)
# so that the report's curve shows the learning. The agent starts to swing the pole up (about 100 against 45
# untrained; README "Set up and run"); 3,000 steps reach about 150 but take about 11 minutes on an AVX2-only CPU.
DEMO_SETTINGS := env.image_size=48 train.batch_size=64 train.eval_shifts=none train.eval_every=250 \
	train.eval_episodes=3 train.final_eval_episodes=5
demo: $(STAMP)
	$(VENV)/bin/unseen train --algo drq --task cartpole_swingup --preset cpu --steps 2000 --out $(DEMO_DIR) \
		--set $(DEMO_SETTINGS)
	$(VENV)/bin/unseen eval $(DEMO_DIR) --episodes 5 \
		--shifts none color_easy color_hard video_easy video_hard distracting_cs
	$(VENV)/bin/unseen report tables $(DEMO_DIR) --out $(DEMO_DIR)/report
	$(VENV)/bin/unseen show --task cartpole_swingup --out $(DEMO_DIR)/report/shifts.png
	@echo "Run directory: $(DEMO_DIR) (config.yaml, train.csv, eval.csv, summary.json, checkpoints/, videos/, tensorboard/)"
	@echo "Report: $(DEMO_DIR)/report (report.md: tables, curves and statistics; shifts.png: what the agent saw under each shift)"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
