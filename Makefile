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
## make figures [PRESET=quick|paper] [RECORDS=dir]: run every notebook, fill figures/ + gallery
figures: $(STAMP)
	$(BIN)/python -m analysis.notebooks check
	$(BIN)/python -m analysis.notebooks run-all --preset $(PRESET) $(if $(RECORDS),--records $(RECORDS))

## make cpu-sweeps: train the cpu preset's missing runs, study by study in priority order
## (about 30 core-hours in all; resumable: finished runs are skipped and a killed run resumes
## from its checkpoint, so run it in chunks and commit results/cpu/**/record.json as they land)
cpu-sweeps: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m analysis.gain_surface sweep --preset cpu --workers 2
	OMP_NUM_THREADS=1 $(BIN)/python -m analysis.dwr run --preset cpu --workers 2
	OMP_NUM_THREADS=1 $(BIN)/python -m analysis.error_accumulation run --preset cpu_trained --workers 2
	OMP_NUM_THREADS=1 $(BIN)/python -m analysis.sweep run analysis/regime/learning_curves.yaml

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
