"""Coverage-guided fuzz target for attnlstm's C binding (issue #22), driven by atheris.

Each input picks an entry point -- every function of ``attnlstm._core`` (the binding itself),
every public op of ``attnlstm.ops`` and ``layers.Dense`` -- and its arguments: arrays of 0-4
axes whose sizes come from a small per-input pool (so shapes often agree and calls reach the
kernels), including 0 and absurd sizes (2**31, 2**40 as zero-stride views); any dtype,
non-contiguous layouts, NaN/inf; and None, ints (huge ones too), floats and junk objects.
Every call must return or raise TypeError/ValueError/MemoryError/OverflowError; anything else
(another exception, a crash, a sanitizer report, a hang past libFuzzer's -timeout) is a finding.

Coverage: atheris instruments attnlstm's Python code and this file, and every (entry point,
outcome) pair is a distinct branch, so inputs reaching a kernel that returns are kept apart
from those stopped by an argument check. The C code itself is not instrumented for coverage
(GCC cannot emit libFuzzer's counters; ASan/UBSan still check it under make sanitize).

The input is decoded by a small self-contained reader (no atheris needed), so the committed
corpus replays anywhere:
    python fuzz/fuzz_binding.py -max_total_time=60 fuzz/corpus   fuzz (make fuzz)
    python fuzz/fuzz_binding.py --replay fuzz/corpus               replay every file, then exit
    python fuzz/fuzz_binding.py --random SECONDS [SEED]            uninstrumented random inputs
                                                                   (make sanitize, under ASan)
"""
import inspect
import os
import re
import sys
import warnings

import numpy as np

ACCEPTED = (TypeError, ValueError, MemoryError, OverflowError)
MAX_REAL = 4096              # larger arrays are zero-stride views (no memory)
POOL_VALUES = [0, 1, 1, 2, 2, 3, 3, 4, 5, 8, 16, 2**31 - 1, 2**31, 2**40]
DTYPES = ["float32", "float32", "float64", "float64", "float16", "int32", "int64", "bool",
          "complex64", "object", "U2"]
JUNK = [None, "abc", ["a", 1], [[1, 2], [3]], 2.5, float("nan"), object(), {"a": 1}, b"x",
        (), -1, 0, 1, 2, 3, 7, 2**31, -2**31 - 1, 2**63, 2**64, True]


def _limit_memory():
    """A hostile size must fail as MemoryError, not take the machine's memory: 2 GiB of
    address space without ASan (ASan reserves terabytes; make sanitize caps its allocations
    with max_allocation_size_mb instead)."""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        return
    try:
        import resource
        cap = 2 << 30
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass


class Reader:
    """Choices from the fuzzer's bytes; zeros once they run out."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n):
        return self.byte() % n if n > 1 else 0

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, k):
        """True with probability about k/8."""
        return self.below(8) < k


def _core_entries():
    from attnlstm import _core
    out = []
    for name in sorted(dir(_core)):
        f = getattr(_core, name)
        if not callable(f) or name.startswith("_"):
            continue
        m = re.match(r"\w+\(([^)]*)\)", " ".join((f.__doc__ or "").split()))
        if m is None:
            continue
        params = [p.strip() for p in m.group(1).split(",") if p.strip()]
        req = [p for p in params if "=" not in p]
        opt = [p.split("=")[0] for p in params if "=" in p]
        out.append(("_core." + name, f, req, opt, []))
    return out


# The ops that reach the C binding: one module per kernel family (the keras.ops-named NumPy
# ops of attnlstm.ops.core are NumPy's, not the binding's).
KERNEL_FAMILIES = ("attnlstm.ops.lstm", "attnlstm.ops.attention", "attnlstm.ops.mha",
                   "attnlstm.ops.vae", "attnlstm.ops.gru")


def _kernel_op_names():
    import importlib
    names = set()
    for mod in KERNEL_FAMILIES:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        names.update(getattr(m, "__all__", ()))
    return names


def _ops_entries():
    from attnlstm import ops
    out = []
    kernel_ops = _kernel_op_names()
    for name in sorted(ops.__all__):
        if name == "float_dtype" or name not in kernel_ops:
            continue
        f = getattr(ops, name)
        req, opt, kwreq = [], [], []
        for p in inspect.signature(f).parameters.values():
            if p.name in ("name", "rng", "seed"):
                continue
            if p.kind == p.KEYWORD_ONLY and p.default is p.empty:
                kwreq.append(p.name)
            elif p.default is p.empty:
                req.append(p.name)
            else:
                opt.append(p.name)
        out.append(("ops." + name, f, req, opt, kwreq))
    return out


def _dense(units, inputs, activation=None, use_bias=True, backward=False):
    from attnlstm import layers
    layer = layers.Dense(units, activation=activation, use_bias=bool(use_bias))
    y = layer(inputs)
    if backward:
        y, ctx = layer.forward(inputs)
        layer.backward(ctx, np.ones_like(y))
    return y


ENTRIES = None


def _entries():
    global ENTRIES
    if ENTRIES is None:
        ENTRIES = (_core_entries() + _ops_entries()
                   + [("layers.Dense", _dense, ["units", "inputs"],
                       ["activation", "use_bias", "backward"], [])])
    return ENTRIES


def _array(r, pool):
    ndim = r.pick([0, 1, 2, 2, 3, 3, 3, 4])
    dims = pool[:8]
    shape = tuple(dims[r.below(len(dims))] for _ in range(ndim))
    dtype = r.pick(DTYPES)
    size = 1
    for s in shape:
        size *= s
    if size > MAX_REAL or any(s > MAX_REAL for s in shape):
        try:
            return np.broadcast_to(np.zeros((), dtype), shape)
        except ValueError:          # the shape itself overflows: NumPy refuses it
            return np.zeros((0,), dtype)
    rng = np.random.default_rng(r.byte())
    layout = r.below(4)
    base = shape
    if layout == 1 and ndim:
        base = tuple(2 * s for s in shape)
    elif layout == 2 and ndim >= 2:
        base = tuple(reversed(shape))
    a = rng.standard_normal(base) * r.pick([1, 1, 0.1, 10, 1e30])
    if a.size and r.chance(2):
        a.reshape(-1)[r.below(a.size)] = r.pick([np.nan, np.inf, -np.inf, 0.0])
    if layout == 1 and ndim:
        a = a[tuple(slice(None, None, 2) for _ in shape)]
    elif layout == 2 and ndim >= 2:
        a = a.T
    elif layout == 3 and ndim >= 2:
        a = np.asfortranarray(a)
    with np.errstate(all="ignore"):
        if dtype == "U2":
            return a.astype("U2")
        if np.dtype(dtype).kind in "iub":
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).clip(-3, 3)
        return a.astype(dtype)


# Shapes by argument name, as indices into the per-input pool [B, T, D, H, 4H, 2k+1, NH, HS],
# so that most calls have consistent shapes and reach the kernels; ints by name likewise.
B_, T_, D_, H_, G_, R_, NH_, HS_ = range(8)
TEMPLATES = {
    "x": (B_, T_, D_), "inputs": (B_, T_, D_), "query": (B_, T_, D_), "value": (B_, T_, D_),
    "values": (B_, T_, D_), "key": (B_, T_, D_), "kernel": (D_, G_),
    "recurrent_kernel": (H_, G_), "bias": (G_,), "h0": (B_, H_), "c0": (B_, H_),
    "mask": (B_, T_), "query_mask": (B_, T_), "value_mask": (B_, T_), "key_mask": (B_, T_),
    "attention_mask": (B_, T_, T_), "W1": (D_, H_), "W2": (D_, H_), "V": (H_,), "b1": (H_,),
    "b2": (H_,), "keys": (B_, T_, H_), "query_kernel": (D_, NH_, HS_),
    "key_kernel": (D_, NH_, HS_), "value_kernel": (D_, NH_, HS_),
    "output_kernel": (NH_, HS_, D_), "query_bias": (NH_, HS_), "key_bias": (NH_, HS_),
    "value_bias": (NH_, HS_), "output_bias": (D_,), "rel_k": (R_, HS_), "rel_v": (R_, HS_),
    "z_mean": (B_, H_), "z_log_var": (B_, H_), "eps": (B_, H_), "d_z": (B_, H_),
    "std": (B_, H_), "d_kl": (B_,), "d_loss": (B_,), "x_hat": (B_, T_, D_),
    "x_log_var": (B_, T_, D_), "d_out": (B_, T_, D_), "d_outputs": (B_, T_, H_),
    "d_h": (B_, H_), "d_c": (B_, H_), "d_last_output": (B_, H_), "d_weights": (B_, T_, T_),
    "d_scores": (B_, NH_, T_, T_),
}
INTS = {"units": H_, "num_heads": NH_, "max_relative_position": 0}


def _template(r, pool, axes, dtype):
    shape = tuple(pool[k] for k in axes)
    size = 1
    for n in shape:
        size *= n
    if size > MAX_REAL or any(n > MAX_REAL for n in shape):
        try:
            return np.broadcast_to(np.zeros((), dtype), shape)
        except ValueError:
            return np.zeros((0,), dtype)
    a = np.random.default_rng(r.byte()).standard_normal(shape)
    if dtype == "bool":
        return a > r.pick([-1.0, 0.0, 0.5, 9.0])
    with np.errstate(all="ignore"):
        return a.astype(dtype)


def _value(r, pool, name=None):
    if name in INTS and r.chance(6):
        return pool[INTS[name]]
    if name in TEMPLATES and r.chance(5):
        dtype = pool[-1] if r.chance(7) else r.pick(DTYPES)
        return _template(r, pool, TEMPLATES[name], "bool" if name.endswith("mask") and
                         r.chance(6) else dtype)
    kind = r.below(16)
    if kind < 10:
        return _array(r, pool)
    if kind < 12:
        return None
    if kind < 14:
        return r.pick(JUNK)
    if kind == 14:
        return r.pick(pool[:8])
    return r.pick(["tanh", "sigmoid", "relu", "linear", "mse", "mae", "dot", "concat",
                   "uniform", "zero", "bogus"])


def _draw_args(r, pool, req, opt, kwreq):
    args = [_value(r, pool, p) for p in req]
    kwargs = {p: _value(r, pool, p) for p in kwreq}
    for p in opt:
        if r.chance(2):
            kwargs[p] = _value(r, pool, p)
    return args, kwargs


def _forward_of(name):
    """The forward op whose result dict a backward op takes as `saved`."""
    from attnlstm import ops
    base = name[len("ops."):-len("_backward")]
    f = getattr(ops, base + "_forward", None)
    return (f, base + "_forward") if f is not None else (None, None)


class Saved(Exception):
    """The forward feeding a backward failed: the input tested only the forward."""


def _call(r):
    """(name, function, args, kwargs, strict): strict = only TypeError/ValueError/MemoryError/
    OverflowError may escape; a backward given a deliberately corrupted `saved` dict may raise
    anything from Python, only a crash counts."""
    name, f, req, opt, kwreq = r.pick(_entries())
    pool = [r.pick(POOL_VALUES) for _ in range(4)]
    # 4H (LSTM gates), 2k+1 (relative positions, k = B's pool value), NH, HS; then the dtype
    pool += [4 * pool[3], 2 * pool[0] + 1, r.pick(POOL_VALUES[:10]), r.pick(POOL_VALUES)]
    pool.append(r.pick(["float32", "float64"]))
    strict = True
    if name.startswith("ops.") and req[:1] == ["saved"]:
        fwd, fwd_name = _forward_of(name)
        sig = inspect.signature(fwd).parameters.values()
        freq = [p.name for p in sig if p.default is p.empty and p.kind != p.KEYWORD_ONLY]
        fkw = [p.name for p in sig if p.default is p.empty and p.kind == p.KEYWORD_ONLY]
        fopt = [p.name for p in sig if p.default is not p.empty and p.name not in
                ("name", "rng", "seed")]
        fargs, fkwargs = _draw_args(r, pool, freq, fopt, fkw)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                saved = fwd(*fargs, **fkwargs)
        except ACCEPTED:
            raise Saved(fwd_name)
        if r.chance(1) and isinstance(saved, dict) and saved:
            saved = dict(saved)
            saved[r.pick(sorted(saved))] = _value(r, pool)
            strict = False
        args, kwargs = _draw_args(r, pool, req[1:], opt, kwreq)
        return name, f, [saved] + args, kwargs, strict
    args, kwargs = _draw_args(r, pool, req, opt, kwreq)
    if name == "_core.set_num_threads":
        args = [r.pick([0, -1, 1, 2, 2**31, 2**64, "2", None])]
    return name, f, args, kwargs, strict


def _outcome_branches():
    """One function per (entry point, outcome): distinct coverage for the fuzzer."""
    table = {}
    outcomes = ("ok", "saved", "corrupted") + tuple(e.__name__ for e in ACCEPTED)
    for i, entry in enumerate(_entries()):
        for outcome in outcomes:
            ns = {}
            exec(f"def _branch_{i}_{outcome}():\n    return {i}\n", ns)
            table[entry[0], outcome] = ns[f"_branch_{i}_{outcome}"]
    return table


BRANCHES = None


def one_input(data):
    global BRANCHES
    if BRANCHES is None:
        BRANCHES = _outcome_branches()
    r = Reader(data)
    try:
        name, f, args, kwargs, strict = _call(r)
    except Saved as e:
        BRANCHES["ops." + str(e)[:-len("_forward")] + "_backward", "saved"]()
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                f(*args, **kwargs)
        outcome = "ok"
    except ACCEPTED as e:
        outcome = type(e).__name__ if type(e) in ACCEPTED else \
            next(c.__name__ for c in ACCEPTED if isinstance(e, c))
    except Exception as e:
        if not strict:
            outcome = "corrupted"
            BRANCHES[name, outcome]()
            return
        raise RuntimeError(f"{name}: unexpected {type(e).__name__}: {e}\n"
                           f"  args={_describe(args)}\n  kwargs={_describe(kwargs)}") from e
    finally:
        try:
            from attnlstm import _core
            _core.set_num_threads(1)
        except Exception:
            pass
    BRANCHES[name, outcome]()


def _describe(obj):
    if isinstance(obj, dict):
        return {k: _describe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_describe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return f"array{obj.shape}:{obj.dtype}:strides{obj.strides}"
    return repr(obj)[:40]


def replay(paths):
    """Runs every corpus file (directories are walked); returns the number of inputs."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p))
        else:
            files.append(p)
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            one_input(data)
        except Exception as e:
            raise RuntimeError(f"corpus input {path}: {e}") from e
    return len(files)


def random_inputs(seconds, seed):
    """Uninstrumented random fuzzing (make sanitize: atheris's libFuzzer cannot share the
    process with GCC's ASan runtime): random inputs and single-byte mutations of the corpus,
    for `seconds`. Returns the number of inputs run."""
    import random
    import time
    rnd = random.Random(seed)
    corpus_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    seeds = [open(os.path.join(corpus_dir, f), "rb").read() for f in sorted(os.listdir(corpus_dir))]
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        if seeds and rnd.random() < 0.7:
            data = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 4)):
                if data and rnd.random() < 0.8:
                    data[rnd.randrange(len(data))] = rnd.randrange(256)
                else:
                    data.insert(rnd.randrange(len(data) + 1), rnd.randrange(256))
            data = bytes(data)
        else:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
        try:
            one_input(data)
        except Exception as e:
            raise RuntimeError(f"random input {data!r}: {e}") from e
        n += 1
    return n


def main(argv):
    _limit_memory()
    if len(argv) > 1 and argv[1] == "--replay":
        import attnlstm  # noqa: F401
        n = replay(argv[2:])
        print(f"replayed {n} inputs: no crash, no unexpected exception")
        return
    if len(argv) > 1 and argv[1] == "--random":
        import attnlstm  # noqa: F401
        seconds = float(argv[2]) if len(argv) > 2 else 20.0
        seed = int(argv[3]) if len(argv) > 3 else 0
        n = random_inputs(seconds, seed)
        print(f"ran {n} random inputs in {seconds:g} s (seed {seed}): no crash, no unexpected "
              f"exception")
        return
    import atheris
    with atheris.instrument_imports(include=["attnlstm"]):
        import attnlstm  # noqa: F401
        import attnlstm.ops  # noqa: F401
        import attnlstm.layers  # noqa: F401
    global BRANCHES
    BRANCHES = {k: atheris.instrument_func(v) for k, v in _outcome_branches().items()}
    atheris.Setup(argv, atheris.instrument_func(one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
