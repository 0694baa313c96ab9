# attnlstm: `make demo` and `make test` each create .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: demo test build bench clean sanitize fuzz

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

# The kernel, determinism and Keras-parity tests again under every other kernel path this CPU
# supports (ATTNLSTM_ISA, README "Kernel paths"), one pytest run per path: an AVX-512 machine
# also checks AVX2 and generic, an AVX2 one generic.
ISA_TESTS ?= tests/test_isa_paths.py tests/test_lstm_kernel.py tests/test_lstm_backward.py \
	tests/test_lstm_perf_paths.py tests/test_lstm_threads.py tests/test_attention_kernels.py \
	tests/test_mha_kernels.py tests/test_layers_keras.py \
	tests/test_models.py::test_predict_batches_cover_all_samples
ISA_OTHERS = $(PY) -c "from attnlstm import _core; i = _core.isa_info(); \
	o = ['generic', 'avx2', 'avx512']; print(*[p for p in o[:o.index(i['cpu_best']) + 1] if p != i['isa']])"

test: $(VENV)/.installed $(VENV)/.installed-test
	$(PY) -m pytest -q
	@for isa in $$($(ISA_OTHERS)); do \
	  echo "== kernel tests under ATTNLSTM_ISA=$$isa"; \
	  ATTNLSTM_ISA=$$isa $(PY) -m pytest -q $(ISA_TESTS) || exit 1; \
	done

# The fuzzing tool (atheris), for make sanitize and make fuzz.
$(VENV)/.installed-fuzz: pyproject.toml | $(VENV)/.installed-test
	$(PIP) install -q -e '.[demo,test,fuzz]'
	@touch $@

# Issue #22: the extension built with ASan+UBSan into build-sanitize/ (the in-place .so is left
# alone), the kernel, binding, layer, regression and fuzz tests run against it with LeakSanitizer
# on, then FUZZ_SECONDS (default 20) of random inputs to the binding; any report fails.
sanitize: $(VENV)/.installed $(VENV)/.installed-test $(VENV)/.installed-fuzz
	.ci/sanitize $(PY)

# Longer coverage-guided fuzzing of the binding (atheris) on the normal build, growing
# build-fuzz/corpus from the committed fuzz/corpus; findings are written to build-fuzz/.
# Each new crash or hang becomes a test in tests/test_fuzz_regressions.py.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.installed $(VENV)/.installed-fuzz
	mkdir -p build-fuzz/corpus
	$(PY) fuzz/fuzz_binding.py -max_total_time=$(FUZZ_SECONDS) -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/ build-fuzz/corpus fuzz/corpus

-include benchmarks/bench.mk

clean:
	rm -rf build build-sanitize build-fuzz *.egg-info attnlstm/*.so $(VENV)
