# Two quick-start commands: `make demo` and `make test`. Both create .venv in the repo root if it is missing.
# Pick your torch build with TORCH / TORCH_INDEX, e.g.
#   make test TORCH="torch torchvision" TORCH_INDEX=https://download.pytorch.org/whl/cpu      (CPU only)
#   make test TORCH="torch torchvision" TORCH_INDEX=https://download.pytorch.org/whl/cu128    (CUDA 12.8)
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INDEX_FLAG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: demo test install

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(INDEX_FLAG) $(TORCH)
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m translate demo

# Two pytest workers of one thread each: the suite's time is mostly process start-up and small forwards, which two
# cores run side by side (96 s instead of about 3 minutes here); more threads per worker would only spin.
test: $(VENV)/.installed
	$(PY) -m ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2
