# Two commands do everything on a fresh machine (see README):  make tutorial   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# nbmake runs every notebook with the tiny stand-in on CPU; stand-in checkpoints are built once into the cache.
TEST_ENV := ESMFOLD_WEIGHTS=tiny

.PHONY: tutorial test test-slow test-colab outputs setup sync figures gpu gpu-figures day-before gpu-rehearsal gpu-check gpu-check-prepare clean

tutorial: $(VENV)/.installed  ## execute every notebook (real weights on a CUDA GPU; ESMFOLD_WEIGHTS=tiny without one)
	$(BIN)/python -m tools.runner

# Notebook 01 is executed by tests/test_project.py (which also compares its kept outputs), not a second time by nbmake.
test: $(VENV)/.installed  ## unit tests + every notebook under nbmake, with the tiny stand-in on CPU
	$(TEST_ENV) $(BIN)/python -m pytest -v -rA -m "not slow" tests notebooks --nbmake --nbmake-timeout=900 --ignore=notebooks/_executed --ignore=notebooks/_student --ignore=notebooks/01_fp32_baseline.ipynb --durations=15

test-slow: $(VENV)/.installed  ## the slow-marked checks too (full-size traces, every TM-align pair): minutes
	$(TEST_ENV) $(BIN)/python -m pytest -v -rA -m slow tests --durations=15

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first; without an NVIDIA GPU the CPU build (≈ 0.2 GB), not the CUDA one (several GB)
	$(BIN)/python -c "import torch" 2>/dev/null || { if command -v nvidia-smi >/dev/null; then \
		$(BIN)/python -m pip install -q torch==2.13.0; else \
		$(BIN)/python -m pip install -q --retries 0 torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
		|| $(BIN)/python -m pip install -q torch==2.13.0; fi; }
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	# Quanto compiles its CPU kernels into its own folder on first use (≈ 45 s): once here, not in the first int4 fold
	$(BIN)/python -c "import torch, optimum.quanto; torch.ops.quanto.unpack(torch.zeros(2, 2, dtype=torch.uint8), 4)" \
		2>/dev/null || echo "Quanto's CPU kernels will compile on first use"
	touch $@

sync:  ## re-pair every notebook with its .py script
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb

figures: $(VENV)/.installed  ## regenerate the committed figures in figures/
	$(BIN)/python -m tools.figures

gpu: $(VENV)/.installed  ## on a CUDA GPU, one command: the T4-capped check of the whole series, then the measured figures
	$(MAKE) day-before NOTEBOOKS=all
	$(MAKE) gpu-figures

gpu-figures: $(VENV)/.installed  ## on a CUDA GPU: measure the full length sweep (random-full stand-in) and redraw figures
	ESMFOLD_WEIGHTS=$${ESMFOLD_WEIGHTS:-random-full} $(BIN)/python -m tools.figures measured

# The notebooks a workshop runs; `make day-before NOTEBOOKS=all` checks the whole series.
day-before: NOTEBOOKS ?= 01 02 03 04
day-before: $(VENV)/.installed  ## on a CUDA GPU: a workshop's notebooks (01–04) with the random-full stand-in under a T4 memory cap
	ESMFOLD_WEIGHTS=random-full ESMFOLD_MEMORY_CAP_GIB=T4 $(BIN)/python -m tools.runner $(NOTEBOOKS)

test-colab: $(VENV)/.installed  ## every notebook as a fresh Colab runtime runs it: Colab's image (tools/colab_image.txt), its setup cell's installs, nothing else
	$(BIN)/python -m tools.colab_check $(NOTEBOOKS)

outputs: $(VENV)/.installed  ## refresh the outputs the committed notebooks show on GitHub (cells tagged show-output)
	ESMFOLD_WEIGHTS=tiny $(BIN)/python -m tools.outputs

gpu-rehearsal: $(VENV)/.installed  ## on a CUDA GPU: part PART of the series (random-full, T4 cap), as the T4 plan splits it
	ESMFOLD_WEIGHTS=random-full ESMFOLD_MEMORY_CAP_GIB=T4 $(BIN)/python -m tools.runner --part $${PART:?usage: make gpu-rehearsal PART=1} \
		--csv $${OUT:-figures}/10_series_on_gpu.csv

gpu-check-prepare:  ## here, before a GPU is lent: wheels and data the GPU machine lacks, into .gpu/ (carried there)
	bash tools/gpu_prepare.sh

gpu-check:  ## on a lent GPU machine (no venv needed): make gpu-check OUT=folder  (≈ 7 min on one H100)
	bash tools/gpu_check.sh $${OUT:?usage: make gpu-check OUT=folder}

clean:
	rm -rf $(VENV) notebooks/_executed
