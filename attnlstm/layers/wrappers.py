"""Wrappers: TimeDistributed (apply a layer to every timestep) and Bidirectional (run a
recurrent layer both ways), as ``keras.layers.TimeDistributed`` / ``keras.layers.Bidirectional``."""
import os
import queue
import threading

import numpy as np

from .. import _core
from ..engine import autodiff
from ..engine.base import Grads, Layer, add_grad
from ..errors import ShapeError, shape_error

__all__ = ["TimeDistributed", "Bidirectional"]


class TimeDistributed(Layer):
    """Applies `layer` to every timestep of a `(B, T, ...)` input, with shared weights.

    The weights are the wrapped layer's (same ``get_weights`` order). The timesteps are folded
    into the batch, so the inner layer runs once on `(B*T, ...)`.

    Args:
        layer: a Layer that maps `(B, ...)` to `(B, ...)`.

    Raises:
        ShapeError: inputs of rank < 3 (no time axis) — e.g. from an LSTM without
            return_sequences=True (the hint names it) —, or what the inner layer raises.
        TypeError: `layer` is not a Layer.
    """
    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"Please initialize `TimeDistributed` layer with a `Layer` instance. "
                            f"Received: layer={layer!r}")
        super().__init__(**kwargs)
        self.layer = self._track(layer)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 3:
            raise shape_error(self, "inputs", ("batch", "timesteps", "..."), input_shape)
        inner = self.layer.compute_output_shape((input_shape[0],) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def build(self, input_shape):
        inner = (input_shape[0],) + tuple(input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner)
            self.layer.built = True
        self.built = True

    def call(self, inputs, mask=None, training=False):
        return self.forward(inputs, mask, training)[0]

    def forward(self, inputs, mask=None, training=False):
        x = np.asarray(inputs)
        B, T = x.shape[:2]
        flat = x.reshape((B * T,) + x.shape[2:])
        kw = {}
        if self.layer._call_accepts("training"):
            kw["training"] = training
        y, inner_ctx = self.layer.forward(flat, **kw)
        y = np.asarray(y)
        return y.reshape((B, T) + y.shape[1:]), (x.shape, inner_ctx)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        """Backward of the inner layer on the folded `(B*T, ...)` call; its weight gradients
        pass through (summed over timesteps by the fold)."""
        shape, inner_ctx = ctx
        if not self.layer.differentiable:
            raise NotImplementedError(
                f"TimeDistributed '{self.name}' cannot backpropagate: its inner layer "
                f"{type(self.layer).__name__} '{self.layer.name}' has no backward.")
        d = np.asarray(d_outputs)
        d = d.reshape((shape[0] * shape[1],) + d.shape[2:])
        g = self.layer.backward(inner_ctx, d, need_input_grad=need_input_grad)
        dx = None if g.inputs is None or not need_input_grad else np.reshape(g.inputs, shape)
        return Grads(dx, g.weights)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        from ..saving import serialize_keras_object
        cfg = super().get_config()
        cfg["layer"] = serialize_keras_object(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config):
        from ..saving import deserialize_keras_object
        config = dict(config)
        if isinstance(config.get("layer"), dict):
            config["layer"] = deserialize_keras_object(config["layer"])
        return cls(**config)

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _copy_rnn(layer, name, **changes):
    """A new, unbuilt layer from `layer`'s config (Keras rebuilds its sub-layers this way)."""
    cfg = dict(layer.get_config())
    cfg.update(changes, name=name)
    return type(layer).from_config(cfg)


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards and merges the two
    (Schuster & Paliwal 1997), Keras 3 ``keras.layers.Bidirectional``.

    The forward layer is a new layer from `layer`'s config named ``forward_<name>``; the
    backward one the same config with ``go_backwards=True`` named ``backward_<name>`` (or
    `backward_layer`). Both get ``zero_output_for_mask = return_sequences`` as Keras forces it,
    so with a mask the padded steps are 0 in both halves; the backward layer reads each sample
    from its end, and since masked steps carry its zero state, its state at a real step only
    depends on the sample's own (later) real steps: right padding stays at the end of the
    merged output.

    Args:
        layer: an RNN layer (LSTM, GRU, SimpleRNN or a subclass of ``layers.RNN``).
        merge_mode: "concat" (default; forward first), "sum", "mul", "ave" or None (a list
            ``[forward, backward]``).
        backward_layer: an RNN layer to use backwards (it must have ``go_backwards=True`` and
            the same return_sequences / return_state / stateful as `layer`), or None.

    Call arguments:
        inputs: `(B, T, D)`; mask: `(B, T)`; training: dropout in the wrapped layers;
        initial_state: the forward layer's states followed by the backward layer's.

    Returns:
        The merged output, `(B, T, 2H)` / `(B, 2H)` with concat, `(B, T, H)` / `(B, H)`
        otherwise (a list of two with merge_mode=None); with return_state the list
        ``[output, *forward_states, *backward_states]`` (LSTM: ``[out, h_fw, c_fw, h_bw,
        c_bw]``). Backward outputs are flipped back to the input's time order.

    Weights (``get_weights`` order): the forward layer's, then the backward layer's.

    Raises:
        ShapeError: `layer` (or `backward_layer`) is not a recurrent layer (with a hint), or the
            inputs are not (batch, timesteps, features) (with a hint naming the producer).
        ValueError: an unknown merge_mode; forward and backward layers that disagree.

    Example:
        >>> from attnlstm.layers import LSTM
        >>> Bidirectional(LSTM(4, return_sequences=True))(np.zeros((2, 10, 3))).shape
        (2, 10, 8)
    """
    supports_masking = True
    sequence_producer = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        for arg, v in (("layer", layer), ("backward_layer", backward_layer)):
            if v is None and arg == "backward_layer":
                continue
            if not _is_rnn(v):
                what = (f"{type(v).__name__} '{v.name}'" if isinstance(v, Layer)
                        else repr(v))
                hint = ("wrap a recurrent layer, e.g. Bidirectional(LSTM(64, "
                        "return_sequences=True)); for a layer applied at every timestep use "
                        "TimeDistributed.")
                raise ShapeError(
                    f"Bidirectional: `{arg}` must be a recurrent layer (LSTM, GRU, SimpleRNN or "
                    f"a subclass of layers.RNN) reading (batch, timesteps, features), got "
                    f"{what}.\nHint: {hint}", layer="Bidirectional", argument=arg,
                    expected="a recurrent layer", got=None, hint=hint)
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode}. Merge mode should be "
                             f'one of {{"sum", "mul", "ave", "concat", None}}')
        if weights is not None:
            raise ValueError("Bidirectional: `weights=` is not supported; call set_weights() "
                             f"after building. Received: weights of length {len(weights)}")
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.forward_layer = _copy_rnn(layer, f"forward_{_strip(layer.name, 'forward_')}")
        if backward_layer is None:
            self.backward_layer = _copy_rnn(layer, f"backward_{_strip(layer.name, 'backward_')}",
                                            go_backwards=not layer.go_backwards)
            self._given_backward = False
        else:
            self.backward_layer = backward_layer
            self._given_backward = True
        fw, bw = self.forward_layer, self.backward_layer
        if fw.go_backwards == bw.go_backwards:
            raise ValueError(
                f"Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards {fw.go_backwards}, "
                f"backward_layer.go_backwards={bw.go_backwards}")
        for a in ("stateful", "return_sequences", "return_state"):
            if getattr(fw, a) != getattr(bw, a):
                raise ValueError(
                    f'Forward layer and backward layer are expected to have the same value for '
                    f'attribute "{a}", got "{getattr(fw, a)}" for forward layer and '
                    f'"{getattr(bw, a)}" for backward layer')
        for sub in (fw, bw):
            sub.zero_output_for_mask = sub.return_sequences
        self._track(fw)
        self._track(bw)
        self.merge_mode = merge_mode
        self.stateful = fw.stateful
        self.return_sequences = fw.return_sequences
        self.return_state = fw.return_state

    @property
    def states(self):
        fw, bw = self.forward_layer.states, self.backward_layer.states
        return list(fw) + list(bw) if fw is not None and bw is not None else None

    def reset_states(self, states=None):
        """Clear both layers' states (or set them: forward states, then backward states)."""
        if not self.stateful:
            raise AttributeError(f"Bidirectional '{self.name}' is not stateful.")
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        n = len(self.forward_layer.state_names)
        self.forward_layer.reset_states(list(states[:n]))
        self.backward_layer.reset_states(list(states[n:]))

    def compute_output_shape(self, input_shape):
        try:
            out = self.forward_layer.compute_output_shape(input_shape)
        except ShapeError as err:
            # name this layer, keep the inner layer's hint
            raise shape_error(self, err.argument, err.expected, err.got, err.hint,
                              fallback_hint=getattr(err, "fallback_hint", None)) from None
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (out[-1] * 2,)
        elif self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            bw = list(self.backward_layer.compute_output_shape(input_shape)[1:])
            return (out if isinstance(out, list) else [out]) + states + bw
        return out

    def validate_call(self, input_shape, mask=None, initial_state=None, **kwarg_shapes):
        if mask is not None:
            self.forward_layer.validate_call(input_shape, mask=mask)
        if initial_state is not None:
            states = initial_state if isinstance(initial_state, list) else [initial_state]
            n = len(self.forward_layer.state_names)
            m = len(self.backward_layer.state_names)
            if len(states) != n + m:
                names = [f"{s}_fw" for s in self.forward_layer.state_names] + \
                        [f"{s}_bw" for s in self.backward_layer.state_names]
                raise shape_error(
                    self, "initial_state", f"[{', '.join(names)}]",
                    "[" + ", ".join(str(tuple(s)) for s in states) + "]",
                    message=f"`initial_state` must list the forward layer's states, then the "
                            f"backward layer's: [{', '.join(names)}], got {len(states)} "
                            f"array{'s' if len(states) != 1 else ''}.")
            self.forward_layer.validate_call(input_shape, initial_state=list(states[:n]))
            self.backward_layer.validate_call(input_shape, initial_state=list(states[n:]))

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(input_shape)
                sub.built = True
        self.built = True

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, list):
            mask = mask[0]
        if self.return_sequences:
            out = [mask, mask] if self.merge_mode is None else mask
        else:
            out = [None, None] if self.merge_mode is None else None
        if self.return_state:
            n = len(self.forward_layer.state_names) + len(self.backward_layer.state_names)
            return (out if isinstance(out, list) else [out]) + [None] * n
        return out

    def call(self, inputs, mask=None, initial_state=None, training=False):
        return self._run(inputs, mask, initial_state, training, record=False)[0]

    def forward(self, inputs, mask=None, initial_state=None, training=False):
        return self._run(inputs, mask, initial_state, training, record=True)

    def _run(self, inputs, mask, initial_state, training, record):
        fw, bw = self.forward_layer, self.backward_layer
        fs = bs = None
        if initial_state is not None:
            st = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            n = len(fw.state_names)
            fs, bs = st[:n], st[n:]
        run = (lambda lay, s: lay.forward(inputs, mask=mask, initial_state=s, training=training)) \
            if record else \
            (lambda lay, s: (lay.call(inputs, mask=mask, initial_state=s, training=training), None))
        par = self._side_by_side(inputs)
        (y, fctx), (y_rev, bctx) = _both(lambda: run(fw, fs), lambda: run(bw, bs), par)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        mode = self.merge_mode
        if mode == "concat":
            out = np.concatenate([y, y_rev], axis=-1)
        elif mode == "sum":
            out = y + y_rev
        elif mode == "ave":
            out = (y + y_rev) / 2
        elif mode == "mul":
            out = y * y_rev
        else:
            out = [np.ascontiguousarray(y), np.ascontiguousarray(y_rev)]
        if self.return_state:
            out = (out if isinstance(out, list) else [out]) + states
        ctx = (fctx, bctx, y, y_rev, fs is not None, par) if record else None
        return out, ctx

    def backward(self, ctx, d_outputs, need_input_grad=True):
        fctx, bctx, y, y_rev, own_state, par = ctx
        fw, bw = self.forward_layer, self.backward_layer
        d = list(d_outputs) if isinstance(d_outputs, (list, tuple)) else [d_outputs]
        n_out = 2 if self.merge_mode is None else 1
        d_out, d_states = d[:n_out], d[n_out:]
        mode = self.merge_mode
        if mode is None:
            dy, dyr = d_out
        elif mode == "concat":
            H = y.shape[-1]
            dy, dyr = d_out[0][..., :H], d_out[0][..., H:]
        elif mode == "sum":
            dy = dyr = d_out[0]
        elif mode == "ave":
            dy = dyr = d_out[0] / 2
        else:
            dy, dyr = d_out[0] * y_rev, d_out[0] * y
        if self.return_sequences:
            dyr = dyr[:, ::-1]
        dy, dyr = np.ascontiguousarray(dy), np.ascontiguousarray(dyr)
        if self.return_state:
            n = len(fw.state_names)
            dy = [dy] + list(d_states[:n])
            dyr = [dyr] + list(d_states[n:])
        gf, gb = _both(lambda: fw.backward(fctx, dy, need_input_grad),
                       lambda: bw.backward(bctx, dyr, need_input_grad),
                       par)
        weights = dict(gf.weights)
        for v, g in gb.weights.items():
            add_grad(weights, v, g)
        dx = None
        if gf.inputs is not None and gb.inputs is not None:
            dx = gf.inputs + gb.inputs
        kw = None
        if own_state:
            kw = {"initial_state": list(gf.kwargs["initial_state"]) +
                  list(gb.kwargs["initial_state"])}
        return Grads(dx, weights, kwargs=kw)

    def _side_by_side(self, x):
        """Whether the two directions run at once, one per core: only our C-kernel LSTM/GRU on
        a plain array (no trace, whose state is per thread) of 2 samples or more, with a
        thread budget of 2 or more, and a direction of at least _SIDE_BY_SIDE_FLOPS and
        _SIDE_BY_SIDE_UNITS (below them each direction splitting over the threads by itself,
        or running alone, was faster:
        benchmarks/NOTES.md). Each direction's results do not depend on the thread it runs on
        (bit for bit)."""
        from .rnn import GRU, LSTM
        fw, bw = self.forward_layer, self.backward_layer
        if type(fw) not in (LSTM, GRU) or type(bw) is not type(fw) or type(x) is not np.ndarray \
                or x.ndim != 3 or autodiff.in_trace() or _core.get_num_threads() < 2:
            return False
        B, T, D = x.shape
        H, g = fw.units, fw.dropout_gates
        if H < _SIDE_BY_SIDE_UNITS or 2 * g * B * H * (D + H) * T < _SIDE_BY_SIDE_FLOPS:
            return False
        # a small batch whose U outgrows one core's L2 splits each direction by units, each
        # core streaming its half of U from its own L2: one direction at a time. So does one
        # sample: (1, 50, 64, 256) forward, 2 threads, 5 ms pauses, medians of 3 s loops, ms,
        # side by side / one after the other: AVX2 1.86, 1.92 / 1.64, 1.36; AVX-512 1.72,
        # 1.27 / 1.17, 1.09 (the same minima); and side by side it ran bimodal in make
        # bench-avx2 (calls of 2.0-2.5 and 1.2-1.4 ms in one row; benchmarks/NOTES.md)
        if B == 1:
            return False
        return not (B < 8 and _core.u_outgrows_l2(g * H * H * np.dtype(fw.dtype).itemsize))

    def get_config(self):
        cfg = super().get_config()
        cfg["merge_mode"] = self.merge_mode
        cfg["layer"] = {"class_name": type(self.forward_layer).__name__,
                        "config": self.forward_layer.get_config()}
        if self._given_backward:
            cfg["backward_layer"] = {"class_name": type(self.backward_layer).__name__,
                                     "config": self.backward_layer.get_config()}
        return cfg

    @classmethod
    def from_config(cls, config):
        from . import rnn
        config = dict(config)

        def make(spec):
            if isinstance(spec, Layer):
                return spec
            klass = getattr(rnn, spec["class_name"], None)
            if klass is None:
                raise ValueError(f"Bidirectional.from_config: unknown layer class "
                                 f"{spec['class_name']!r}.")
            return klass.from_config(spec["config"])
        config["layer"] = make(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = make(config["backward_layer"])
        return cls(**config)


def _is_rnn(obj):
    from .rnn import RNN
    return isinstance(obj, RNN)


# The two directions run side by side, each on one core, from this much work per direction
# (input and recurrent products) and this many units: measured on 2 threads with the benchmark
# harness's timing (benchmarks/NOTES.md, LSTM, T = 50, D = 64, one after the other / side by
# side, ms): forward (1, 256) 2.07 / 1.74, (8, 512) 16.9 / 15.3, (64, 512) 71.7 / 69.4;
# forward + backward (1, 256) 6.0 / 4.7, (64, 512) 284 / 247; but at H = 64 (each direction
# split by itself, no per-step barrier to save) (64, 64) 3.28 / 3.67, (8, 64) 0.92 / 1.14. A
# batch under 8 whose U outgrows the L2 stays one direction at a time: (1, 512) forward 8.1 /
# 7.6 in that run, but 8.8 / 10.2 outside the harness and 10.2 against PyTorch's 7.6 in a full
# snapshot (each direction split by units keeps half of U in each core's L2).
_SIDE_BY_SIDE_FLOPS = 3e7
_SIDE_BY_SIDE_UNITS = 256


def _one_core(fn):
    """fn() with the calling thread's kernels held to one thread (_core.set_thread_budget): two
    directions side by side each keep their own core. Without it the first to start took the
    pool's second thread as well, three busy threads on two cores (Bidirectional LSTM (64, 50,
    64, 256) on 2 threads: 37 ms side by side against 27 one after the other)."""
    old = _core.set_thread_budget(1)
    try:
        return fn()
    finally:
        _core.set_thread_budget(old)


def _run_into(fn, box):
    """box["result"] = fn() on one core (_one_core), or box["error"], re-raised later on the
    caller's thread."""
    try:
        box["result"] = _one_core(fn)
    except BaseException as e:
        box["error"] = e


class _Helper:
    """The thread Bidirectional runs its second direction on: one daemon thread, started on
    first use and kept (a pool of one), fed through a queue. Starting a thread per call cost
    122 us on the 2-core KVM guest and its start waited until the new thread ran; the handoff
    to a waiting thread takes 17 us back to back (benchmarks/NOTES.md, 2026-12-08, Bidirectional
    LSTM forward on 2 threads 2-11% faster). One caller at a time uses it; a concurrent caller
    (another Python thread) gets a thread of its own for that call. A forked child starts with
    no helper (the parent's thread does not exist there) and starts its own on first use."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self.lock = threading.Lock()    # held by the caller whose work the helper runs
        self.queue = None
        self.thread = None

    def _main(self, q):
        while True:
            fn, box, done = q.get()
            try:
                _run_into(fn, box)
            finally:
                done.release()
            del fn, box, done           # hold no reference to the results between calls

    def start(self, fn, box):
        """Queue fn (results into box) on the helper, starting it if needed (self.lock held).
        Returns the lock that is released when fn has finished."""
        if self.thread is None or not self.thread.is_alive():
            self.queue = queue.SimpleQueue()
            self.thread = threading.Thread(target=self._main, args=(self.queue,),
                                           name="attnlstm-bidirectional", daemon=True)
            self.thread.start()
        done = threading.Lock()
        done.acquire()
        self.queue.put((fn, box, done))
        return done


_helper = _Helper()
os.register_at_fork(after_in_child=_helper._reset)


def _both(first, second, parallel):
    """(first(), second()), with second() on another thread while first() runs when `parallel`
    (the kernels release the GIL; each side's kernels then run on one thread): the persistent
    _Helper thread, or a new thread when another caller is using it. An exception from either
    is raised here, after both have finished."""
    if not parallel:
        return first(), second()
    box = {}
    if _helper.lock.acquire(blocking=False):
        try:
            done = _helper.start(second, box)
            try:
                a = _one_core(first)
            finally:
                done.acquire()          # second() has finished: box is complete
        finally:
            _helper.lock.release()
    else:
        th = threading.Thread(target=_run_into, args=(second, box),
                              name="attnlstm-bidirectional-extra", daemon=True)
        th.start()
        try:
            a = _one_core(first)
        finally:
            th.join()
    if "error" in box:
        raise box["error"]
    return a, box["result"]
