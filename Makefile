# Tetrad: `make demo` (install, mini benchmark, every stage of dvc.yaml, where the results are) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tetrad-installed
PYTHON ?= python3
# Real weights are imported from here when the folder exists (offline machines, a colleague's copy).
WEIGHTS_FROM ?= ../shared/upstream-data
# Then the openly licensed ones still missing are downloaded (WEIGHTS_FETCH=0: never); offline is found within
# this many seconds. $TETRAD_WEIGHTS_MIRROR (http://HOST[:PORT]) replaces the upstream hosts.
WEIGHTS_FETCH ?= 1
WEIGHTS_TIMEOUT ?= 5
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PATH := $(abspath $(BIN)):$(PATH)

SYSTEM_TOOLS := espeak-ng:espeak-ng aplay:alsa-utils chromium:chromium

# Checkouts of upstream repositories for `make parity` (fetched by you; never committed).
UPSTREAM_AASIST ?= ../upstream/aasist
UPSTREAM_SBI ?= ../upstream/SelfBlendedImages
UPSTREAM_LIPFORENSICS ?= ../upstream/LipForensics
UPSTREAM_RETINAFACE ?= ../upstream/retinaface
UPSTREAM_SYNCNET ?= ../upstream/syncnet_python
# RetinaFace's pinned albumentations 1.0.0, kept out of the venv: pip install --no-deps --target DIR albumentations==1.0.0
UPSTREAM_PYDEPS ?= ../upstream/pydeps

.PHONY: help install system-deps demo test params bench parity clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## the Debian packages: espeak-ng, alsa-utils (the mini benchmark), chromium (the browser tests)
	@missing=""; for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else echo "missing system packages:$$missing -- install them (e.g. sudo apt-get install$$missing) and re-run"; exit 1; fi; \
	fi

install: $(STAMP) ## create .venv and install pinned requirements (once; again only when they change)
$(STAMP): requirements.txt pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install -q -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	set -o pipefail; $(BIN)/python -m pip install -q --no-deps -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

# `tetrad run` runs the stages of dvc.yaml as `dvc repro` would, but writes no dvc.lock: the clone stays clean.
# `weights fetch --open` exits 1 on a download with a wrong sha256: the demo stops rather than run a demo file there.
demo: install ## build the mini benchmark and run the whole pipeline on it (CPU; fetches open weights when online)
	@if [ -d "$(WEIGHTS_FROM)" ]; then $(BIN)/tetrad weights import "$(WEIGHTS_FROM)"; \
	  else echo "no $(WEIGHTS_FROM) to import weights from"; fi
	@if [ "$(WEIGHTS_FETCH)" = 1 ]; then $(BIN)/tetrad weights fetch --open --timeout $(WEIGHTS_TIMEOUT); \
	  else echo "WEIGHTS_FETCH=$(WEIGHTS_FETCH): no download; layers without real weights run demo-random weights"; fi
	$(BIN)/tetrad demo-weights
	$(BIN)/tetrad run
	@$(BIN)/tetrad where

test: install ## run the test suite (CPU, offline)
	$(BIN)/python -m pytest -q

params: install ## regenerate params.yaml from conf/ (commit it; a test fails when they drift)
	$(BIN)/tetrad params

bench: install ## plan-style loop vs the stages, exact and fast, on 8 generated 10-s 720p/1080p clips (~1.5 h on 2 CPU cores)
	$(BIN)/python -m tetrad.bench --out reports/bench.md

parity: install ## our re-implementations vs upstream code on the same weights/inputs -> reports/parity.md
	@test -d "$(UPSTREAM_AASIST)/models" || { echo "need a checkout of clovaai/aasist@a04c986 at UPSTREAM_AASIST=$(UPSTREAM_AASIST)"; exit 1; }
	@test -d "$(UPSTREAM_SBI)/src/inference" || { echo "need a checkout of mapooon/SelfBlendedImages@9fe4efe at UPSTREAM_SBI=$(UPSTREAM_SBI)"; exit 1; }
	@test -d "$(UPSTREAM_LIPFORENSICS)/preprocessing" || { echo "need a checkout of ahaliassos/LipForensics@d0bf555 at UPSTREAM_LIPFORENSICS=$(UPSTREAM_LIPFORENSICS)"; exit 1; }
	@test -f "$(UPSTREAM_RETINAFACE)/retinaface/predict_single.py" || { echo "need a checkout of ternaus/retinaface@b72317d (or pip install --no-deps --target DIR retinaface_pytorch==0.0.8) at UPSTREAM_RETINAFACE=$(UPSTREAM_RETINAFACE)"; exit 1; }
	@test -f "$(UPSTREAM_PYDEPS)/albumentations/__init__.py" || { echo "need upstream RetinaFace's albumentations 1.0.0 at UPSTREAM_PYDEPS=$(UPSTREAM_PYDEPS): $(BIN)/pip install --no-deps --target $(UPSTREAM_PYDEPS) albumentations==1.0.0"; exit 1; }
	@test -f "$(UPSTREAM_SYNCNET)/SyncNetInstance.py" || { echo "need a checkout of joonson/syncnet_python@6efbb1c at UPSTREAM_SYNCNET=$(UPSTREAM_SYNCNET)"; exit 1; }
	$(BIN)/python -m tetrad.parity.aasist --upstream $(UPSTREAM_AASIST) --weights-dir weights \
	  $$( [ -d "$(WEIGHTS_FROM)" ] && echo --real-dir $(WEIGHTS_FROM) ) --out reports/parity.md
	$(BIN)/python -m tetrad.parity.sbi --upstream $(UPSTREAM_SBI) --weights-dir weights --out reports/parity.md
	$(BIN)/python -m tetrad.parity.lipforensics --upstream $(UPSTREAM_LIPFORENSICS) \
	  --mean-face $(UPSTREAM_LIPFORENSICS)/preprocessing/20words_mean_face.npy --weights-dir weights --out reports/parity.md
	$(BIN)/python -m tetrad.parity.retinaface --upstream $(UPSTREAM_RETINAFACE) --upstream-deps $(UPSTREAM_PYDEPS) \
	  --weights-dir weights --out reports/parity.md
	$(BIN)/python -m tetrad.parity.syncnet --upstream $(UPSTREAM_SYNCNET) --weights-dir weights --out reports/parity.md

clean: ## remove generated data, caches and runs (keeps weights and .venv)
	rm -rf data/mini data/mini_fakeavceleb data/*/cache data/*/scores data/summary reports/*/ reports/summary.* reports/summary_auc.png \
	  mlflow.db mlruns mlartifacts .dvc/cache .dvc/tmp
