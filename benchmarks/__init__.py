"""Benchmark harness for attnlstm against PyTorch and Keras 3 (issue 7). Run `python -m benchmarks`."""
