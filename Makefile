# bordewatch — two commands on a fresh machine: `make detect` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

OUT ?= runs/demo
DEMO ?= data/demo
BORDER ?=
BEFORE ?=
AFTER ?=
ARGS ?=
# the demo scene's stretch of the default line (bordewatch synth --preset demo draws km 815-825)
DEMO_KM ?= 815:825

.PHONY: install system-deps detect demo-data test test-all bench lint typecheck train clean

install: $(STAMP)

# Rebuild the venv when pyproject.toml is newer than the stamp. torch is pinned and installed
# first: a bare `torch` requirement would resolve to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(STAMP)

# Optional real clients for the interoperability tests (headless Chromium, GDAL's ogrinfo/gdalinfo,
# QGIS 3.22 for Python). Tests that need them skip with a reason where they are absent. Needs root
# and Debian's apt; CI runs it (about 2 minutes), `make test` never does.
system-deps:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium gdal-bin python3-qgis qgis-providers >/dev/null \
		|| echo "system-deps: could not install chromium/gdal-bin/python3-qgis; their tests will skip"; \
	else echo "system-deps: needs root and apt-get; skipping (browser/GDAL/QGIS tests will skip)"; fi

$(DEMO)/before.tif: | $(STAMP)
	$(BIN)/bordewatch synth --preset demo --out $(DEMO) --overwrite

demo-data: $(DEMO)/before.tif

ifeq ($(strip $(BEFORE)),)
detect: $(STAMP) $(DEMO)/before.tif
	$(BIN)/bordewatch detect --before $(DEMO)/before.tif --after $(DEMO)/after.tif \
		--km $(DEMO_KM) $(if $(BORDER),--border $(BORDER)) --out $(OUT) --overwrite $(ARGS)
else
detect: $(STAMP)
	$(BIN)/bordewatch detect --before $(BEFORE) --after $(AFTER) \
		$(if $(BORDER),--border $(BORDER)) --out $(OUT) --overwrite $(ARGS)
endif

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check bordewatch tests benchmarks scripts
	$(BIN)/ruff format --check bordewatch tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy bordewatch

train: $(STAMP)
	$(BIN)/bordewatch train --out models/

clean:
	rm -rf runs $(DEMO) .pytest_cache .ruff_cache .mypy_cache .hypothesis build *.egg-info
