# make train: set up .venv (torch first, then the package) and train a preset; make test: the test suite.
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
PRESET ?= reference36
SPLIT  ?= localbalanced
EMNIST_DATA_DIR ?= ../shared/data/emnist:../shared/data/emnist-local
export EMNIST_DATA_DIR

.PHONY: install train test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)   # before the package, so pip never pulls a CUDA build
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

train: install
	$(VENV)/bin/emnist-cnn train --preset $(PRESET) $(if $(SPLIT),--split $(SPLIT)) $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
