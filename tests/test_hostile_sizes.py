"""Hostile sizes (issue #22): an absurd size is a ValueError naming the argument and its value,
raised before anything is converted or allocated -- not an OverflowError that names nothing,
nor a MemoryError about some internal array, nor gigabytes copied first.

The big inputs are zero-stride views (np.broadcast_to), which take no memory. The cases run in
a child interpreter limited to 2 GiB of address space, so a regression (an op copying the view
first) fails with a MemoryError instead of taking the machine's memory.
"""
import json
import os
import subprocess
import sys

import pytest

import attnlstm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(attnlstm.__file__)))
LIMIT = "2147483647"

# (case id, code evaluated in the child (names: np, ops, layers, attnlstm, _core, big(shape)),
#  expected exception type, regular expression its message must match)
CASES = [
    ("lstm timesteps", "ops.lstm(big((1, 2**31, 1)), np.zeros((1, 8), 'f4'), np.zeros((2, 8), 'f4'))",
     "ValueError", rf"^ops\.lstm: timesteps=2147483648 exceeds the BLAS's 32-bit limit {LIMIT} "
                   r"\(`x` has shape \(1, 2147483648, 1\)\)"),
    ("lstm batch", "ops.lstm(big((2**31, 1, 1)), np.zeros((1, 8), 'f4'), np.zeros((2, 8), 'f4'))",
     "ValueError", rf"^ops\.lstm: batch=2147483648 exceeds the BLAS's 32-bit limit {LIMIT}"),
    ("lstm features", "ops.lstm(big((1, 1, 2**31)), big((2**31, 8)), np.zeros((2, 8), 'f4'))",
     "ValueError", rf"^ops\.lstm: features=2147483648 exceeds the BLAS's 32-bit limit {LIMIT}"),
    ("lstm batch*timesteps",
     "ops.lstm(big((2**16, 2**16, 1)), np.zeros((1, 8), 'f4'), np.zeros((2, 8), 'f4'))",
     "ValueError", r"^ops\.lstm: batch\*timesteps=4294967296 exceeds the BLAS's 32-bit limit "
                   r".*\(`x` has shape \(65536, 65536, 1\)\)"),
    ("lstm_forward with a mask",
     "ops.lstm_forward(big((1, 2**31, 1)), np.zeros((1, 8), 'f4'), np.zeros((2, 8), 'f4'), "
     "mask=big((1, 2**31), 'bool'))",
     "ValueError", r"^ops\.lstm: timesteps=2147483648 exceeds"),
    ("LSTM layer timesteps", "layers.LSTM(2)(big((1, 2**31, 2)))",
     "ValueError", r"^LSTM '.*': timesteps=2147483648 exceeds the BLAS's 32-bit limit"),
    ("dot_attention Tq", "ops.dot_attention(big((1, 2**31, 2)), np.zeros((1, 3, 2), 'f4'))",
     "ValueError", rf"^ops\.dot_attention: Tq=2147483648 exceeds the BLAS's 32-bit limit {LIMIT} "
                   r"\(`query` has shape \(1, 2147483648, 2\)\)"),
    ("dot_attention batch*Tv",
     "ops.dot_attention(np.zeros((2**16, 1, 2), 'f4'), big((2**16, 2**15, 2)))",
     "ValueError", r"^ops\.dot_attention: batch\*Tv=2147483648 exceeds"),
    ("additive_attention Tv",
     "ops.additive_attention(np.zeros((1, 2, 2), 'f4'), big((1, 2**31, 2)))",
     "ValueError", r"^ops\.additive_attention: Tv=2147483648 exceeds the BLAS's 32-bit limit"),
    ("Attention layer Tq", "layers.Attention()([big((1, 2**31, 2)), np.zeros((1, 3, 2), 'f4')])",
     "ValueError", r"^Attention '.*': Tq=2147483648 exceeds"),
    ("multi_head_attention batch*Tq",
     "ops.multi_head_attention(big((2**16, 2**16, 2)), np.zeros((2**16, 1, 2), 'f4'), "
     "**mha_weights(2))",
     "ValueError", r"^ops\.multi_head_attention: batch\*Tq=4294967296 exceeds"),
    ("multi_head_attention Tq*Tv",
     "ops.multi_head_attention(big((1, 2**16, 2)), big((1, 2**16, 2)), **mha_weights(2))",
     "ValueError", r"^ops\.multi_head_attention: Tq\*Tv=4294967296 exceeds .*"
                   r"\(`value` has shape \(1, 65536, 2\)\)"),
    ("set_num_threads 2**31", "attnlstm.set_num_threads(2**31)",
     "ValueError", r"^set_num_threads: `n` must be a positive integer \(a thread count, at most "
                   r"2147483647\), got 2147483648\.$"),
    ("set_num_threads 2**64", "_core.set_num_threads(2**64)",
     "ValueError", r"^set_num_threads: `n` must be .* got 18446744073709551616\.$"),
    ("set_num_threads -2**63-1", "_core.set_num_threads(-2**63 - 1)",
     "ValueError", r"^set_num_threads: `n` must be .* got -9223372036854775809\.$"),
    ("set_num_threads 2.5", "_core.set_num_threads(2.5)",
     "TypeError", r"^set_num_threads: `n` must be an integer, got float\.$"),
    ("recon_forward kind", "_core.recon_forward(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), None, 2**40)",
     "ValueError", r"^recon_forward: `kind` must be 0 \(squared error\) or 1 \(absolute error\), "
                   r"got 1099511627776\.$"),
    ("recon_backward kind",
     "_core.recon_backward(np.zeros(1), np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), kind=-2**70)",
     "ValueError", r"^recon_backward: `kind` must be .* got -1180591620717411303424\.$"),
]

CHILD = r"""
import json, os, resource, sys
if "asan" not in os.environ.get("LD_PRELOAD", ""):   # ASan reserves terabytes of addresses
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
import numpy as np
import attnlstm
from attnlstm import _core, layers, ops

def big(shape, dtype='float32'):
    return np.broadcast_to(np.zeros((), dtype), shape)

def mha_weights(D, NH=2, HS=3):
    z = lambda *s: np.zeros(s, 'float32')
    return dict(query_kernel=z(D, NH, HS), query_bias=z(NH, HS), key_kernel=z(D, NH, HS),
                key_bias=z(NH, HS), value_kernel=z(D, NH, HS), value_bias=z(NH, HS),
                output_kernel=z(NH, HS, D), output_bias=z(D))

out = {}
for case, code in json.loads(sys.stdin.read()):
    try:
        eval(code)
        out[case] = ["no error", ""]
    except BaseException as e:
        out[case] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def outcomes():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if "asan" in env.get("LD_PRELOAD", ""):   # make sanitize: ASan caps each allocation
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":max_allocation_size_mb=2048"
    res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT,
                         input=json.dumps([[c[0], c[1]] for c in CASES]))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case,code,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_hostile_size_names_the_argument(outcomes, case, code, exc, pattern):
    import re
    got_type, got_msg = outcomes[case]
    assert got_type == exc and re.search(pattern, got_msg), \
        f"{case}: {code}\n  got {got_type}: {got_msg}"
