# attnlstm: `make demo` and `make test` each create .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: demo test build bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# attnlstm itself (editable, so tests run against the tree) and the demo's needs.
$(VENV)/.installed: $(SOURCES) | $(VENV)/bin/python
	$(PIP) install -q -e '.[demo]'
	@touch $@

# Test tools and the Keras 3 (TensorFlow CPU backend) that the parity tests compare against.
$(VENV)/.installed-test: pyproject.toml | $(VENV)/.installed
	$(PIP) install -q -e '.[demo,test]'
	@touch $@

build: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m attnlstm.demo

test: $(VENV)/.installed $(VENV)/.installed-test
	$(PY) -m pytest -q

-include benchmarks/bench.mk

clean:
	rm -rf build *.egg-info attnlstm/*.so $(VENV)
