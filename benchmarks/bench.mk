# Benchmark harness (issue 7), included by the main Makefile, which provides $(VENV)/.installed,
# VENV (= .venv) and PY (= $(VENV)/bin/python).
#   make bench          full grid, 1 thread and all cores (~10-15 min on 2 cores) -> results/bench.json
#   make bench-quick    a handful of shapes (~2 min)
#   make bench-dry-run  the harness end to end in seconds (attnlstm and PyTorch, one call per op)
#   make bench-avx2     the grid with attnlstm's AVX2 path against PyTorch (MKL, oneDNN, ATen)
#                       held to AVX2 too: what an AVX2-only CPU (AMD Zen 3) runs, measured on an
#                       AVX-512 one -> results/bench-avx2.json (BENCH_ARGS as for bench)
# torch is ALWAYS pinned exactly (torch==2.13.0): a looser pin pulls GBs of CUDA wheels.

BENCH_TORCH ?= torch==2.13.0
BENCH_TF    ?= tensorflow-cpu
BENCH_KERAS ?= keras==3.15.1
BENCH_ONNX  ?= onnx>=1.16 onnxruntime>=1.18
BENCH_ARGS  ?=

.PHONY: bench bench-quick bench-dry-run bench-deps bench-avx2

$(VENV)/.bench-deps: $(VENV)/.installed
	@$(PY) -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
	  || $(VENV)/bin/pip install -q "$(BENCH_TORCH)"
	@$(PY) -c "import tensorflow, keras, sys; sys.exit(keras.__version__ != '3.15.1')" 2>/dev/null \
	  || $(VENV)/bin/pip install -q $(BENCH_TF) "$(BENCH_KERAS)"
	@$(PY) -c "import onnx, onnxruntime" 2>/dev/null \
	  || $(VENV)/bin/pip install -q $(foreach p,$(BENCH_ONNX),"$(p)")
	@touch $@

bench-deps: $(VENV)/.bench-deps

bench: $(VENV)/.bench-deps
	$(PY) -m benchmarks $(BENCH_ARGS)

bench-avx2: $(VENV)/.bench-deps
	ATTNLSTM_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \
	  $(PY) -m benchmarks --out results/bench-avx2.json $(BENCH_ARGS)

bench-quick: $(VENV)/.bench-deps
	$(PY) -m benchmarks --quick $(BENCH_ARGS)

bench-dry-run: $(VENV)/.installed
	$(PY) -m benchmarks --quick --dry-run
