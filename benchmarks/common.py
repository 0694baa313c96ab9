"""Shared helpers: contender names, thread pinning, framework imports, FLOP formulas, checks."""
import importlib.util
import os
import time

import numpy as np

# Contenders, in table order. "keras" is eager `layer(x)`; "keras-jit" is the compiled
# `predict_on_batch` / `train_on_batch` path of a keras.Model around the same layer.
# "onnxruntime" is ONNX Runtime's CPU `LSTM` operator (forward only; issue 20).
CONTENDERS = ["attnlstm", "torch", "keras", "keras-jit", "onnxruntime"]
LABELS = {"attnlstm": "attnlstm", "torch": "PyTorch", "keras": "Keras eager",
          "keras-jit": "Keras compiled", "onnxruntime": "ONNX Runtime"}
NOT_YET = "attnlstm: not implemented yet"

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_counters():
    """Counters for telling a row measured on a loaded machine: (steal_s, others_s, t) where
    steal_s is the time the hypervisor gave this VM's virtual CPUs to others (/proc/stat,
    summed over CPUs), others_s the CPU time that every other process on the machine used
    (busy jiffies of all CPUs minus this process's own CPU time, os.times()), t a wall clock.
    None where /proc/stat is missing. Resolution: one clock tick (10 ms); report differences
    over a row (seconds long), not over a call."""
    try:
        with open("/proc/stat") as f:
            cpu = f.readline().split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    v = [int(x) for x in cpu[1:]]
    # user nice system idle iowait irq softirq steal (guest is already counted in user)
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    steal = v[7] if len(v) > 7 else 0
    own = os.times()
    return steal / tick, busy / tick - (own.user + own.system), time.perf_counter()


def load_between(a, b):
    """{"steal_s", "others_s", "wall_s"} between two cpu_counters() readings, or None."""
    if a is None or b is None:
        return None
    return {"steal_s": round(b[0] - a[0], 3), "others_s": round(max(b[1] - a[1], 0.0), 3),
            "wall_s": round(b[2] - a[2], 3)}


class NotAvailable(Exception):
    """A contender cannot run this op (missing package or attnlstm function). The message is
    printed in the table cell instead of a number."""


def thread_env(n, base=None):
    env = dict(os.environ if base is None else base)
    for k in THREAD_ENV:
        env[k] = str(n)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["KERAS_BACKEND"] = "tensorflow"
    env["TF_ENABLE_ONEDNN_OPTS"] = env.get("TF_ENABLE_ONEDNN_OPTS", "1")
    return env


def have(module):
    return importlib.util.find_spec(module) is not None


_fw = {}


def attnlstm():
    if "attnlstm" not in _fw:
        import attnlstm as m
        import attnlstm.ops  # noqa: F401  (attnlstm/__init__ does not import it)
        _fw["attnlstm"] = m
    return _fw["attnlstm"]


def torch():
    if "torch" not in _fw:
        if not have("torch"):
            raise NotAvailable("torch not installed (make bench installs torch==2.13.0)")
        import torch as m
        _fw["torch"] = m
    return _fw["torch"]


def keras():
    """(keras, tf). TF must be configured before it initialises: see pin_threads."""
    if "keras" not in _fw:
        if not (have("tensorflow") and have("keras")):
            raise NotAvailable("tensorflow-cpu / keras not installed")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import warnings
        import tensorflow as tf
        import keras as k
        tf.get_logger().setLevel("ERROR")
        warnings.filterwarnings("ignore", message="The model does not have any trainable weights")
        if k.backend.backend() != "tensorflow":
            raise NotAvailable(f"keras backend is {k.backend.backend()!r}, not tensorflow")
        _fw["keras"] = (k, tf)
    return _fw["keras"]


def onnxruntime():
    """(onnx, onnxruntime): the `onnx` package builds the graph, ONNX Runtime runs it."""
    if "onnxruntime" not in _fw:
        if not (have("onnx") and have("onnxruntime")):
            raise NotAvailable("onnx / onnxruntime not installed (the `bench` extra has them)")
        import onnx
        import onnxruntime as ort
        ort.set_default_logger_severity(3)
        _fw["onnxruntime"] = (onnx, ort)
    return _fw["onnxruntime"]


def ort_session(model_proto):
    """An ONNX Runtime CPU session for `model_proto`, on the thread count of this worker
    (OMP_NUM_THREADS, which run.py sets per worker): intra-op n, inter-op 1, sequential, idle
    threads blocking rather than spinning."""
    onnx, ort = onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Its idle intra-op threads would otherwise spin on the cores for far longer than the
    # harness's settle pause, slowing every other contender's multi-threaded calls (measured:
    # attnlstm's 2-thread LSTM (64,50,64,256) 10.0 ms alone, 16.8 ms with a spinning session
    # in the process); blocking idle threads is what the other runtimes do after their pause.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_proto.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def pin_threads(n, frameworks=("attnlstm", "torch", "keras")):
    """Pin every contender to `n` threads. Call first thing in a fresh process whose env already
    has OMP/OPENBLAS/MKL_NUM_THREADS=n (TF reads its settings once, when it initialises).
    Returns a dict describing what was set."""
    done = {"threads": n, "env": {k: os.environ.get(k) for k in THREAD_ENV}}
    if "attnlstm" in frameworks:
        al = attnlstm()
        setter = getattr(al, "set_num_threads", None) or getattr(al._core, "set_num_threads")
        setter(n)
        getter = getattr(al, "get_num_threads", None) or getattr(al._core, "get_num_threads", None)
        done["attnlstm"] = getter() if getter else n
    if "torch" in frameworks and have("torch"):
        t = torch()
        t.set_num_threads(n)
        try:
            t.set_num_interop_threads(1)
        except RuntimeError:
            pass
        done["torch"] = t.get_num_threads()
    if "keras" in frameworks and have("tensorflow") and have("keras"):
        k, tf = keras()
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        done["tensorflow"] = {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                              "inter": tf.config.threading.get_inter_op_parallelism_threads()}
    return done


def versions():
    v = {"numpy": np.__version__}
    for name in ("attnlstm", "torch", "tensorflow", "keras", "onnx", "onnxruntime"):
        if have(name):
            try:
                from importlib.metadata import version
                v[name] = version("tensorflow-cpu" if name == "tensorflow" else name)
            except Exception:
                try:
                    v[name] = version(name)
                except Exception:
                    v[name] = "?"
    return v


# ---- FLOP formulas (performance-notes.md) ------------------------------------------------------

def lstm_fwd_flops(B, T, D, H):
    return T * (8 * B * H * (D + H) + 72 * B * H)


def lstm_bwd_flops(B, T, D, H):
    return T * 16 * B * H * (D + H)


def dot_attn_flops(B, Tq, Tv, d):
    return 4 * B * Tq * Tv * d          # QK^T and PV, 2*B*Tq*Tv*d each


def additive_attn_flops(B, Tq, Tv, d):
    # add + tanh (12, as for the LSTM gates) + scale-multiply-add per (q, v, feature), plus PV
    return B * Tq * Tv * d * (1 + 12 + 2) + 2 * B * Tq * Tv * d


def mha_flops(B, Tq, Tv, d, heads):
    proj = 2 * B * (Tq + 2 * Tv) * d * d + 2 * B * Tq * d * d   # q, k, v and output projections
    return proj + 4 * B * Tq * Tv * d                            # all heads together: HS*NH = d


# ---- equality check ----------------------------------------------------------------------------

def to_numpy(a):
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    if hasattr(a, "numpy"):
        return a.numpy()
    return np.asarray(a)


def close(ref, got, rtol):
    """max |ref - got| / max(1, max |ref|) and whether it is within rtol (float32 rounding)."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if ref.shape != got.shape:
        return float("inf"), False
    err = float(np.max(np.abs(ref - got))) / max(1.0, float(np.max(np.abs(ref))))
    return err, err <= rtol
