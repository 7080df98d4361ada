# bnn-dwr: every target creates .venv itself when it is missing.
PY            ?= python3
VENV          ?= .venv
BIN           := $(VENV)/bin
PRESET        ?= quick
# CPU build by default (quick install). GPU users: see README "GPU install".
TORCH_SPEC    ?= torch==2.13.0
STAMP         := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: venv test test-all figures bench complexity clean-results lab cpu-sweeps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

venv: $(STAMP)

## make test: the default suite (CPU, a few minutes on 2 cores)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## make test-all: default suite plus slow tests
test-all: $(STAMP)
	$(BIN)/python -m pytest

RECORDS       ?=
## make figures [PRESET=quick|cpu|paper] [RECORDS=dir]: run every notebook (and its PRESET_* companion
## presets), fill figures/ + gallery
figures: $(STAMP)
	$(BIN)/python -m analysis.notebooks check
	$(BIN)/python -m analysis.notebooks run-all --preset $(PRESET) $(if $(RECORDS),--records $(RECORDS))

## make cpu-sweeps: train the cpu presets' missing runs in seed chunks, in priority order (every
## study's first seed before any third seed; about 38 core-hours in all; resumable: finished
## runs are skipped and a killed run resumes from its checkpoint, so run it in chunks and
## commit results/cpu*/**/record.json as they land; a chunk with a failed run does not stop the next)
CPU_SWEEP = OMP_NUM_THREADS=1 $(BIN)/python -m
cpu-sweeps: $(STAMP)
	-$(CPU_SWEEP) analysis.gain_surface sweep --preset cpu --workers 2 --seeds 0 1
	-$(CPU_SWEEP) analysis.dwr run --preset cpu --workers 2 --seeds 0
	-$(CPU_SWEEP) analysis.error_accumulation run --preset cpu_trained --workers 2 --seeds 0
	-$(CPU_SWEEP) analysis.gain_surface sweep --preset cpu --workers 2 --seeds 2
	-$(CPU_SWEEP) analysis.dwr run --preset cpu --workers 2 --seeds 1
	-$(CPU_SWEEP) analysis.error_accumulation run --preset cpu_trained --workers 2 --seeds 1
	-$(CPU_SWEEP) analysis.gain_surface sweep --preset cpu_long --workers 2
	-$(CPU_SWEEP) analysis.dwr run --preset cpu --workers 2 --seeds 2
	-$(CPU_SWEEP) analysis.sweep run analysis/regime/learning_curves.yaml

## make complexity: original vs DWR complexity table
complexity: $(STAMP)
	$(BIN)/python -m bnnlib.complexity --table dwr

## make bench: training-throughput benchmark (CPU; CUDA too when present)
bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

## make clean-results: drop the quick preset's records so `make figures` retrains everything
clean-results:
	rm -rf results/quick

## make lab: JupyterLab at the repo root (figures/ and the gallery visible), file browser on notebooks/
lab: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[lab]"
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks
