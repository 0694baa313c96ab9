"""Recurrent layers (Keras 3 ``keras.layers.{RNN, LSTM, GRU, SimpleRNN}`` semantics).

:class:`RNN` owns everything a recurrent layer shares with the others -- shape checks and
hints, masks, ``go_backwards``, ``return_sequences`` / ``return_state``, ``stateful``,
``initial_state``, dropout masks, mask propagation -- so a subclass declares only its cell:
its weights (:meth:`RNN.build`), and its kernels (:meth:`RNN.run_forward`,
:meth:`RNN.run_backward`).
"""
import numpy as np

from .. import activations, backend, constraints, initializers, ops, regularizers
from ..engine.base import Grads, Layer, check_time_mask
from ..errors import format_shape, shape_error

__all__ = ["RNN", "LSTM", "GRU", "SimpleRNN"]


_COUNTS = {1: "one", 2: "two"}


def _check_rate(name, v):
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"Received an invalid value for argument `{name}`, expected a float "
                         f"between 0 and 1, got {v}.")
    return float(v)


class RNN(Layer):
    """Base class of recurrent layers over a whole `(B, T, D)` sequence, Keras 3 semantics.

    A subclass sets the class attributes below, creates its weights in ``build`` and
    implements ``run_forward`` / ``run_backward`` (one kernel call over the sequence each).
    Everything else is here: a masked step carries the states over and repeats the previous
    output (zeros before the first real step, as Keras on TF's CPU path); ``go_backwards``
    reads the sequence from the end and returns the outputs in processing order; with
    ``stateful`` the final states (plain arrays, neither trainable nor saved) are the next
    call's initial states; dropout masks are drawn as Keras 3.15.1 does (``0 < rate < 1``
    in training only).

    Class attributes of a subclass:
        state_names: the states, e.g. ``("h", "c")``; ``return_state`` returns them in order.
        dropout_gates: how many per-gate dropout masks Keras' cell draws when
            ``recurrent_dropout > 0`` (4 for LSTM, 3 for GRU, 1 for SimpleRNN).
        keras_cell_name: the name of Keras' cell sub-object (``"lstm_cell"``): the layer's
            weights are saved under ``<path>/cell/vars`` as Keras does (attnlstm.saving).
        article: "an LSTM", "a GRU", ... for messages.

    Args:
        units: H, positive int.
        dropout, recurrent_dropout: fractions dropped in training, see the subclass.
        seed: seed of the dropout masks.
        return_sequences: return the `(B, T, H)` sequence, not only the last output `(B, H)`.
        return_state: also return the final states: ``[output, *states]``.
        go_backwards: process the sequence from the end; the output sequence is reversed.
        stateful: reuse the final states of a batch as the initial states of the next
            (needs a fixed batch size); :meth:`reset_states` clears them.
        unroll: only False (the C kernels loop over time themselves): True raises ValueError.
        zero_output_for_mask: zeros (not the carried output) at masked steps.
        activity_regularizer: passed on to :class:`Layer`.

    Raises:
        ShapeError: inputs that are not (batch, timesteps, features) -- with a hint naming the
            previous recurrent layer that lacks return_sequences=True, or the Input without a
            time axis --, a feature size other than the built kernel's, an initial_state or
            mask of the wrong shape, a stateful layer without a fixed batch size.
        ValueError: an argument out of range, or one attnlstm does not implement (``unroll``).
    """
    supports_masking = True
    # Hook for attnlstm.engine.base.producer_hint: this layer's output is a sequence when
    # return_sequences is True.
    sequence_producer = True
    state_names = ("h",)
    dropout_gates = 1
    keras_cell_name = None
    article = "an RNN"

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False,
                 activity_regularizer=None, **kwargs):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive "
                             f"integer, got {units}.")
        dropout = _check_rate("dropout", dropout)
        recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        if unroll:
            raise ValueError(f"{type(self).__name__}: `unroll=True` is not supported (the C kernel "
                             f"runs the time loop itself; results are the same). Received: "
                             f"unroll={unroll!r}")
        if activity_regularizer is not None:
            kwargs["activity_regularizer"] = activity_regularizer
        super().__init__(**kwargs)
        self.units = int(units)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self._rng = backend.make_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = False
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.activity_regularizer_arg = activity_regularizer
        self.states = None

    @staticmethod
    def _check_cudnn(owner, use_cudnn):
        if use_cudnn not in ("auto", False):
            raise ValueError(f"{owner}: `use_cudnn={use_cudnn!r}` is not supported (attnlstm runs "
                             f"on the CPU); use 'auto' or False. Received: use_cudnn={use_cudnn!r}")

    # -- shapes -------------------------------------------------------------------------------

    @property
    def _kind(self):
        return type(self).__name__

    def _feature_axis(self):
        return self.kernel.shape[0] if self.built else "features"

    def compute_output_shape(self, input_shape):
        a = self.article
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            fallback = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                fallback = f"{a} reads whole sequences; add a time axis, e.g. x[:, None, :]."
            elif isinstance(input_shape, list):
                names = ", ".join(self.state_names)
                fallback = (f"{a} takes one sequence tensor; pass initial states as "
                            f"initial_state=[{names}].")
            elif isinstance(input_shape, tuple) and len(input_shape) == 4:
                fallback = (f"the inputs have one axis too many; {a} reads (batch, timesteps, "
                            f"features).")
            raise shape_error(self, "inputs", ("batch", "timesteps", self._feature_axis()),
                              input_shape, fallback_hint=fallback)
        B, T, D = input_shape
        if D is None:
            raise shape_error(self, "inputs", (B if B is not None else "batch",
                                               T if T is not None else "timesteps", "features"),
                              input_shape, f"the feature axis of {a} input must have a known size.")
        if self.built and D != self.kernel.shape[0]:
            raise shape_error(
                self, "inputs", ("batch", "timesteps", self.kernel.shape[0]), input_shape,
                f"this {self._kind} was built for {self.kernel.shape[0]} features; a layer "
                f"instance keeps its weights, so use a new {self._kind} for inputs of {D} "
                f"features.")
        if T == 0:
            raise shape_error(self, "inputs", ("batch", "timesteps >= 1", D), input_shape,
                              f"{a} needs at least one timestep.")
        if self.stateful and B is None:
            raise shape_error(
                self, "inputs", ("batch (fixed)", "timesteps", D), input_shape,
                f"a stateful {self._kind} keeps one state per sample, so it needs a fixed batch "
                f"size: Input(shape=..., batch_size=N) or Input(batch_shape=(N, T, D)).")
        H = self.units
        out = (B, T, H) if self.return_sequences else (B, H)
        if self.return_state:
            return [out] + [(B, H)] * len(self.state_names)
        return out

    def validate_call(self, input_shape, mask=None, initial_state=None, **kwarg_shapes):
        B = input_shape[0]
        if mask is not None:
            check_time_mask(self, "mask", input_shape, mask)
        if initial_state is not None:
            states = initial_state if isinstance(initial_state, list) else [initial_state]
            n = len(self.state_names)
            want = (B if B is not None else "batch", self.units)
            if len(states) != n:
                names = ", ".join(self.state_names)
                count = _COUNTS.get(n, str(n))
                plural = "s" if n > 1 else ""
                raise shape_error(
                    self, "initial_state", [want] * n, states,
                    f"{self.article} has {count} state{plural}: pass initial_state=[{names}].",
                    message=f"`initial_state` must be a list [{names}] of {count} "
                            f"{format_shape(want)} tensor{plural}, got {len(states)}: "
                            f"[{', '.join(format_shape(s) for s in states)}].")
            for k, s in enumerate(states):
                s = tuple(s)
                ok = len(s) == 2 and s[1] == self.units and (B is None or s[0] is None or s[0] == B)
                if not ok:
                    hint = None
                    if len(s) == 3:
                        hint = (f"that is a sequence; pass final states, e.g. from "
                                f"{self._kind}(..., return_state=True), which returns "
                                f"[output, {', '.join(self.state_names)}].")
                    elif len(s) == 2 and s[1] != self.units:
                        hint = (f"the states must have this {self._kind}'s units ({self.units}); "
                                f"they have {s[1]} (an encoder with a different size?).")
                    raise shape_error(self, f"initial_state[{k}]", want, s, hint)

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * len(self.state_names)
        return out_mask

    # -- the cell: subclasses -----------------------------------------------------------------

    def run_forward(self, x, mask, initial_state, dp_mask, rec_mask, save):
        """One kernel call over the sequence.

        Args:
            x: `(B, T, D)` in the layer's dtype (already multiplied by the shared dropout mask
                when only ``dropout`` is set).
            mask: `(B, T)` or None; initial_state: list of `(B, H)` arrays or None.
            dp_mask, rec_mask: per-gate dropout masks `(B, gates*D)` / `(B, gates*H)` or None.
            save: whether a backward follows (keep what it needs).

        Returns:
            ``(outputs (B, T, H) in processing order under the mask rule, [final states],
            saved)``.
        """
        raise NotImplementedError

    def run_backward(self, saved, d_seq, d_last, d_states):
        """Gradients through one ``run_forward``: d_seq `(B, T, H)` or None, d_last `(B, H)`
        or None, d_states a list (entries None) or None. Returns ``(dx, {Variable: grad},
        [d initial states] or None)``."""
        raise NotImplementedError

    # -- computing ----------------------------------------------------------------------------

    def reset_states(self, states=None):
        """Clear a stateful layer's states (zeros next call), or set them (a list)."""
        if not self.stateful:
            raise AttributeError(f"{self._kind} '{self.name}' is not stateful; pass stateful=True.")
        if states is None:
            self.states = None
            return
        if not isinstance(states, (list, tuple)):
            states = [states]
        arrs = [np.ascontiguousarray(s, dtype=self.dtype) for s in states]
        if len(arrs) != len(self.state_names):
            raise ValueError(f"{self._kind} '{self.name}': reset_states takes "
                             f"{len(self.state_names)} states {list(self.state_names)}, got "
                             f"{len(arrs)}.")
        for k, s in enumerate(arrs):
            if s.ndim != 2 or s.shape[1] != self.units:
                raise shape_error(self, f"states[{k}]", ("batch", self.units), s.shape)
        self.states = arrs

    def _dropout_mask(self, B, n, rate, gates):
        """Keras' ``dropout(ones((B, n)), rate)`` per gate: kept entries are 1 / (1 - rate)."""
        keep = self._rng.random((B, gates * n)) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    def call(self, inputs, mask=None, initial_state=None, training=False):
        # no backward follows a plain call: the kernel need not keep its gates
        return self._forward(inputs, mask, initial_state, training, save=False)[0]

    def forward(self, inputs, mask=None, initial_state=None, training=False):
        return self._forward(inputs, mask, initial_state, training, save=True)

    def _forward(self, inputs, mask, initial_state, training, save):
        x = inputs
        B = x.shape[0]
        own_state = initial_state is not None
        if initial_state is not None and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if initial_state is None and self.stateful and self.states is not None:
            if self.states[0].shape[0] != B:
                raise shape_error(
                    self, "inputs", (self.states[0].shape[0], "timesteps", x.shape[2]), x.shape,
                    f"a stateful {self._kind} needs the same batch size at every call; call "
                    f"reset_states() to start over.")
            initial_state = self.states
        # Dropout as Keras 3.15.1 draws it (only for 0 < rate < 1): with recurrent_dropout the
        # cell takes one mask per gate for x and for h_{t-1}; with dropout alone one (B, D)
        # mask on x, the same at every step.
        dp_on = training and 0.0 < self.dropout < 1.0
        rec_on = training and 0.0 < self.recurrent_dropout < 1.0
        dp_mask = rec_mask = x_scale = None
        if rec_on:
            rec_mask = self._dropout_mask(B, self.units, self.recurrent_dropout,
                                          self.dropout_gates)
            if dp_on:
                dp_mask = self._dropout_mask(B, x.shape[2], self.dropout, self.dropout_gates)
        elif dp_on:
            x_scale = self._dropout_mask(B, x.shape[2], self.dropout, 1)
            x = x * x_scale[:, None, :]
        outputs, states, saved = self.run_forward(x, mask, initial_state, dp_mask, rec_mask,
                                                  save)
        out_mask = None
        if self.zero_output_for_mask and mask is not None:
            out_mask = np.asarray(mask, bool)
            if self.go_backwards:
                out_mask = out_mask[:, ::-1]
            outputs = np.where(out_mask[:, :, None], outputs, np.asarray(0, outputs.dtype))
        if self.stateful:
            self.states = [np.array(s) for s in states]
        out = outputs if self.return_sequences else np.ascontiguousarray(outputs[:, -1])
        if self.return_state:
            out = [out] + [np.ascontiguousarray(s) for s in states]
        return out, (saved, out_mask, x_scale, own_state)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        saved, out_mask, x_scale, own_state = ctx
        d_states = None
        if self.return_state:
            d_out, d_states = d_outputs[0], list(d_outputs[1:])
        else:
            d_out = d_outputs
        d_seq = d_last = None
        if self.return_sequences:
            d_seq = d_out if out_mask is None else np.where(out_mask[:, :, None], d_out, 0)
        else:
            d_last = d_out if out_mask is None else np.where(out_mask[:, -1:], d_out, 0)
        dx, weights, d_init = self.run_backward(saved, d_seq, d_last, d_states)
        if x_scale is not None:
            dx = dx * x_scale[:, None, :]
        kw = {"initial_state": d_init} if own_state else None
        return Grads(dx, weights, kwargs=kw)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            units=self.units, dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
            seed=self.seed, return_sequences=self.return_sequences,
            return_state=self.return_state, go_backwards=self.go_backwards,
            stateful=self.stateful, unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask)
        # Layer serializes its activity_regularizer where it implements one
        cfg.setdefault("activity_regularizer", self.activity_regularizer_arg)
        return cfg


class _GatedRNN(RNN):
    """What LSTM, GRU and SimpleRNN share beyond :class:`RNN`: activations, initializers,
    regularizers and constraints of ``kernel``, ``recurrent_kernel``, ``bias``."""
    # whether the cell has gates with a recurrent_activation (SimpleRNN has none)
    has_recurrent_activation = True

    def __init__(self, units, activation, recurrent_activation, use_bias, kernel_initializer,
                 recurrent_initializer, bias_initializer, kernel_regularizer,
                 recurrent_regularizer, bias_regularizer, kernel_constraint,
                 recurrent_constraint, bias_constraint, use_cudnn="auto", implementation=None,
                 **kwargs):
        # Keras' implementation 1 and 2 (LSTM, GRU) compute the same; None: not an argument
        if implementation is not None and implementation not in (1, 2):
            raise ValueError(f"{type(self).__name__}: `implementation` must be 1 or 2. "
                             f"Received: implementation={implementation!r}")
        super().__init__(units, **kwargs)
        if implementation is not None:
            self.implementation = implementation
        self._check_cudnn(f"{self._kind} '{self.name}'", use_cudnn)
        self.use_cudnn = use_cudnn
        self.activation = activations.get(activation)
        # Fail at construction for activations the kernel does not implement.
        self._act_code = activations.c_code(activation, "activation", self)
        if self.has_recurrent_activation:
            self.recurrent_activation = activations.get(recurrent_activation)
            self._ract_code = activations.c_code(recurrent_activation, "recurrent_activation",
                                                 self)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.recurrent_constraint = recurrent_constraint
        self.bias_constraint = bias_constraint

    def _build_weights(self, D, gates, bias_shape=None, bias_init=None):
        H = self.units
        self.kernel = self.add_weight("kernel", (D, gates * H), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (H, gates * H),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", bias_shape or (gates * H,),
                                        bias_init or self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def _weight_grads(self, g):
        weights = {self.kernel: g["kernel"], self.recurrent_kernel: g["recurrent_kernel"]}
        if self.use_bias:
            weights[self.bias] = g["bias"]
        return weights

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            activation=activations.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(regularizers.get(self.kernel_regularizer)),
            recurrent_regularizer=regularizers.serialize(
                regularizers.get(self.recurrent_regularizer)),
            bias_regularizer=regularizers.serialize(regularizers.get(self.bias_regularizer)),
            kernel_constraint=constraints.serialize(constraints.get(self.kernel_constraint)),
            recurrent_constraint=constraints.serialize(
                constraints.get(self.recurrent_constraint)),
            bias_constraint=constraints.serialize(constraints.get(self.bias_constraint)))
        if self.has_recurrent_activation:
            cfg["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return cfg


class LSTM(_GatedRNN):
    """Long short-term memory layer (Hochreiter & Schmidhuber 1997), Keras 3 semantics.

    One C call runs the whole sequence: one GEMM for the input projection of every step, one
    recurrent GEMM per step, fused gates. Gate order ``[i, f, c, o]``::

        z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
        c_t = f * c_{t-1} + i * activation(z_c),   h_t = o * activation(c_t)

    Args:
        units: H, positive int.
        activation: "tanh" (default), "sigmoid", "hard_sigmoid", "relu", "linear" or None.
        recurrent_activation: for the i, f, o gates; default "sigmoid". Keras 3's hard_sigmoid is
            ``clip(x/6 + 1/2, 0, 1)``.
        use_bias: add `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras defaults
            "glorot_uniform", "orthogonal", "zeros".
        unit_forget_bias: initialise the forget-gate bias to 1 (Jozefowicz et al. 2015).
        kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint: given to the weights (``Layer.add_weight``).
        activity_regularizer: given to :class:`Layer`.
        dropout, recurrent_dropout: fractions dropped in training (identity at inference), as
            Keras 3.15.1 draws them: with ``recurrent_dropout > 0``, one mask per gate for x and
            one per gate for h_{t-1} (Keras' implementation 1), fixed over the sequence; with
            dropout alone, one `(B, D)` mask on x for every step. Dropped entries are 0 and kept
            ones scaled by 1 / (1 - rate) (Gal & Ghahramani 2016).
        return_sequences: return the whole `(B, T, H)` output sequence, not only the last `(B, H)`.
        return_state: also return the final states: ``[output, h, c]``.
        go_backwards: read the sequence from the end; the output sequence is then reversed.
        stateful: keep the final states of a batch as the initial states of the next (needs a
            fixed batch size); :meth:`reset_states` clears them.
        unroll: False only (True raises ValueError); use_cudnn: "auto" or False (True raises).
        implementation: 1 or 2 (Keras: the same math).
        zero_output_for_mask: write zeros (not the carried output) at masked steps.
        dtype: "float32" (default) or "float64".

    Call arguments:
        inputs: `(B, T, D)`.
        mask: `(B, T)` booleans, True = real step. Taken from the inputs' Keras mask (Masking,
            Embedding(mask_zero=True)) when not given. A masked step carries h and c over and
            repeats the previous output (zeros before the first real step), as Keras on TF.
            (Unlike Keras, the inputs' mask is also applied when `initial_state` is passed.)
        initial_state: ``[h0, c0]``, each `(B, H)`.
        training: apply dropout.

    Returns:
        `(B, H)`, or `(B, T, H)` with return_sequences; with return_state the list ``[output,
        h_T, c_T]`` (each state `(B, H)`). The output mask is the input mask when
        return_sequences, else None.

    Weights (``get_weights`` order):
        ``kernel`` `(D, 4H)`, ``recurrent_kernel`` `(H, 4H)`, ``bias`` `(4H,)` (if use_bias).

    Raises:
        ShapeError: inputs that are not (batch, timesteps, features) — with a hint naming the
            previous LSTM when it lacks return_sequences=True, or the Input without a time axis —,
            a feature size that differs from the built kernel's, an initial_state or mask of the
            wrong shape, a stateful LSTM without a fixed batch size.
        ValueError: an activation the C kernel does not implement; unroll=True; use_cudnn=True.

    Example:
        >>> LSTM(4, return_sequences=True)(np.zeros((2, 10, 3))).shape
        (2, 10, 4)
    """
    state_names = ("h", "c")
    dropout_gates = 4
    keras_cell_name = "lstm_cell"
    article = "an LSTM"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 use_cudnn="auto", zero_output_for_mask=False, implementation=2, **kwargs):
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint,
            use_cudnn=use_cudnn, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            activity_regularizer=activity_regularizer, implementation=implementation,
            **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def build(self, input_shape):
        D, H = input_shape[-1], self.units
        bias_init = None
        if self.use_bias and self.unit_forget_bias:
            init = self.bias_initializer

            def bias_init(shape, dtype, rng):
                return np.concatenate([init((H,), dtype, rng), np.ones((H,), dtype),
                                       init((2 * H,), dtype, rng)])
        self._build_weights(D, 4, bias_init=bias_init)

    def run_forward(self, x, mask, initial_state, dp_mask, rec_mask, save):
        r = ops.lstm_forward(
            x, self.kernel.value, self.recurrent_kernel.value,
            self.bias.value if self.use_bias else None, initial_state, mask,
            self.activation, self.recurrent_activation, self.go_backwards,
            dtype=self.dtype, name=f"LSTM '{self.name}'", rec_mask=rec_mask, dp_mask=dp_mask,
            save_gates=save, save_act_c=save)
        return r["outputs"], [r["h"], r["c"]], r

    def run_backward(self, saved, d_seq, d_last, d_states):
        d_h, d_c = d_states if d_states is not None else (None, None)
        g = ops.lstm_backward(saved, d_outputs=d_seq, d_h=d_h, d_c=d_c, d_last_output=d_last,
                              name=f"LSTM '{self.name}'")
        return g["x"], self._weight_grads(g), [g["h0"], g["c0"]]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(unit_forget_bias=self.unit_forget_bias)
        return cfg


class GRU(_GatedRNN):
    """Gated recurrent unit (Cho et al. 2014), Keras 3 ``keras.layers.GRU`` semantics.

    One C call runs the whole sequence (input projection of all steps as one GEMM, packed
    per-step recurrent products, fused gates). Gate order ``[z, r, h]``::

        z = ra(x_t W_z + bx_z + h_{t-1} U_z + bh_z),  r = ra(x_t W_r + bx_r + h_{t-1} U_r + bh_r)
        n = act(x_t W_h + bx_h + r * (h_{t-1} U_h + bh_h))     reset_after=True (default)
        n = act(x_t W_h + bx_h + (r * h_{t-1}) U_h)             reset_after=False
        h_t = z * h_{t-1} + (1 - z) * n

    Args:
        units: H, positive int.
        activation: "tanh" (default), "sigmoid", "hard_sigmoid", "relu", "linear" or None.
        recurrent_activation: for z and r; default "sigmoid".
        use_bias: add `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras defaults
            "glorot_uniform", "orthogonal", "zeros".
        kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint: given to the weights (``Layer.add_weight``).
        activity_regularizer: given to :class:`Layer`.
        dropout, recurrent_dropout: fractions dropped in training, as Keras 3.15.1: with
            ``recurrent_dropout > 0`` three masks for x and three for h_{t-1} (one per gate,
            implementation 1), fixed over the sequence; with dropout alone one `(B, D)` mask.
        seed: seed of the dropout masks.
        return_sequences, return_state (``[output, h]``), go_backwards, stateful: as
            :class:`RNN`.
        unroll: False only; use_cudnn: "auto" or False.
        reset_after: apply the reset gate after the recurrent product (Keras' default True;
            bias `(2, 3H)`: input row, recurrent row); False: before (bias `(3H,)`).
        dtype: "float32" (default) or "float64".

    Call arguments:
        inputs: `(B, T, D)`.
        mask: `(B, T)` booleans (True = real step), by default the inputs' Keras mask. A masked
            step carries h over and repeats the previous output (zeros before the first real
            step), as Keras on TF's CPU path.
        initial_state: ``h0`` `(B, H)` or ``[h0]``.
        training: apply dropout.

    Returns:
        `(B, H)`, or `(B, T, H)` with return_sequences; with return_state ``[output, h_T]``.

    Weights (``get_weights`` order):
        ``kernel`` `(D, 3H)`, ``recurrent_kernel`` `(H, 3H)`, ``bias`` `(2, 3H)` with
        reset_after else `(3H,)` (if use_bias).

    Raises:
        ShapeError: as :class:`RNN` (with GRU hints).
        ValueError: an activation the C kernel does not implement; unroll=True; use_cudnn=True.

    Example:
        >>> GRU(4, return_sequences=True)(np.zeros((2, 10, 3))).shape
        (2, 10, 4)
    """
    state_names = ("h",)
    dropout_gates = 3
    keras_cell_name = "gru_cell"
    article = "a GRU"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, reset_after=True,
                 use_cudnn="auto", zero_output_for_mask=False, implementation=2, **kwargs):
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint,
            use_cudnn=use_cudnn, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            activity_regularizer=activity_regularizer, implementation=implementation,
            **kwargs)
        self.reset_after = bool(reset_after)

    def build(self, input_shape):
        H = self.units
        self._build_weights(input_shape[-1], 3,
                            bias_shape=(2, 3 * H) if self.reset_after else (3 * H,))

    def run_forward(self, x, mask, initial_state, dp_mask, rec_mask, save):
        r = ops.gru_forward(
            x, self.kernel.value, self.recurrent_kernel.value,
            self.bias.value if self.use_bias else None, initial_state, mask, self.activation,
            self.recurrent_activation, self.reset_after, self.go_backwards, dtype=self.dtype,
            name=f"GRU '{self.name}'", rec_mask=rec_mask, dp_mask=dp_mask, save_gates=save)
        return r["outputs"], [r["h"]], r

    def run_backward(self, saved, d_seq, d_last, d_states):
        d_h = d_states[0] if d_states is not None else None
        g = ops.gru_backward(saved, d_outputs=d_seq, d_h=d_h, d_last_output=d_last,
                             name=f"GRU '{self.name}'")
        return g["x"], self._weight_grads(g), [g["h0"]]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(reset_after=self.reset_after)
        return cfg


def _act_deriv(name, y):
    """Derivative of a C-kernel activation at the point whose output is y (al_act_impl.h)."""
    if name == "tanh":
        return 1.0 - y * y
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "hard_sigmoid":
        return ((y > 0) & (y < 1)).astype(y.dtype) / 6.0
    if name == "relu":
        return (y > 0).astype(y.dtype)
    return np.ones_like(y)


class SimpleRNN(_GatedRNN):
    """Fully-connected RNN (Elman 1990), Keras 3 ``keras.layers.SimpleRNN`` semantics.

    ``h_t = activation((x_t * p) @ kernel + bias + (h_{t-1} * q) @ recurrent_kernel)``; the
    output is h_t. NumPy over BLAS: one GEMM for the input projection of every step, one
    `(B, H) x (H, H)` product per step; the backward is hand-written BPTT with the weight
    gradients as GEMMs after the time loop.

    Args:
        units: H, positive int.
        activation: "tanh" (default), "sigmoid", "hard_sigmoid", "relu", "linear" or None.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer: as Keras.
        kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint: given to the weights.
        activity_regularizer: given to :class:`Layer`.
        dropout, recurrent_dropout: fractions dropped in training: one `(B, D)` mask p on x and
            one `(B, H)` mask q on h_{t-1}, fixed over the sequence (Keras' SimpleRNNCell).
        seed, return_sequences, return_state (``[output, h]``), go_backwards, stateful: as
            :class:`RNN`. unroll: False only.
        dtype: "float32" (default) or "float64".

    Call arguments:
        inputs: `(B, T, D)`; mask: `(B, T)`; initial_state: ``h0`` `(B, H)` or ``[h0]``;
        training: apply dropout.

    Returns:
        `(B, H)`, or `(B, T, H)` with return_sequences; with return_state ``[output, h_T]``.

    Weights (``get_weights`` order):
        ``kernel`` `(D, H)`, ``recurrent_kernel`` `(H, H)`, ``bias`` `(H,)` (if use_bias).

    Raises:
        ShapeError: as :class:`RNN`.
        ValueError: an activation outside the list above; unroll=True.

    Example:
        >>> SimpleRNN(4)(np.zeros((2, 10, 3))).shape
        (2, 4)
    """
    state_names = ("h",)
    dropout_gates = 1
    has_recurrent_activation = False
    keras_cell_name = "simple_rnn_cell"
    article = "a SimpleRNN"

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, seed=None,
                 zero_output_for_mask=False, **kwargs):
        super().__init__(
            units, activation, None, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful,
            unroll=unroll, zero_output_for_mask=zero_output_for_mask,
            activity_regularizer=activity_regularizer, **kwargs)

    def build(self, input_shape):
        self._build_weights(input_shape[-1], 1)

    def run_forward(self, x, mask, initial_state, dp_mask, rec_mask, save):
        dt = np.dtype(self.dtype)
        x = np.ascontiguousarray(x, dtype=dt)
        B, T, D = x.shape
        H = self.units
        W, U = self.kernel.value, self.recurrent_kernel.value
        act = activations.serialize(self.activation) or "linear"
        f = activations.get(act)
        xd = x if dp_mask is None else x * dp_mask[:, None, :]
        pre = (xd.reshape(B * T, D) @ W).reshape(B, T, H)
        if self.use_bias:
            pre = pre + self.bias.value
        h0 = None if initial_state is None else np.ascontiguousarray(initial_state[0], dtype=dt)
        h = np.zeros((B, H), dt) if h0 is None else h0
        keep = None if mask is None else np.asarray(mask, bool)
        hs = np.empty((B, T, H), dt)          # h after each processing step
        ys = np.empty((B, T, H), dt)          # activation outputs per step (for the derivative)
        outs = np.empty((B, T, H), dt) if keep is not None else hs
        prev_out = np.zeros((B, H), dt)
        for s in range(T):
            t = T - 1 - s if self.go_backwards else s
            hp = h if rec_mask is None else h * rec_mask
            y = np.asarray(f(pre[:, t] + hp @ U), dt)
            ys[:, s] = y
            if keep is not None:
                k = keep[:, t][:, None]
                h = np.where(k, y, h)
                prev_out = np.where(k, y, prev_out)
                outs[:, s] = prev_out
            else:
                h = y
            hs[:, s] = h
        saved = dict(x=xd, h0=h0, hs=hs, ys=ys, keep=keep, dp_mask=dp_mask, rec_mask=rec_mask,
                     act=act) if save else None
        return outs, [hs[:, -1]], saved

    def run_backward(self, saved, d_seq, d_last, d_states):
        s_ = saved
        hs, ys, keep = s_["hs"], s_["ys"], s_["keep"]
        B, T, H = hs.shape
        dt = hs.dtype
        U = self.recurrent_kernel.value
        q = s_["rec_mask"]
        dh = np.zeros((B, H), dt) if d_states is None or d_states[0] is None \
            else np.array(d_states[0], dt)
        dcar = np.zeros((B, H), dt)           # output gradient carried over masked steps
        dpre = np.zeros((B, T, H), dt)        # by processing step
        for s in range(T - 1, -1, -1):
            t = T - 1 - s if self.go_backwards else s
            u = np.zeros((B, H), dt)
            if d_seq is not None:
                u = u + d_seq[:, s]
            if d_last is not None and s == T - 1:
                u = u + d_last
            if keep is not None:
                k = keep[:, t][:, None]
                # unmasked: out_s = h_s = y_s; masked: out_s = out_{s-1}, h_s = h_{s-1}
                dy = np.where(k, dh + dcar + u, 0)
                dcar = np.where(k, 0, dcar + u)
                dh_pass = np.where(k, 0, dh)
            else:
                dy = dh + u
                dh_pass = 0
            dp = dy * _act_deriv(s_["act"], ys[:, s])
            dpre[:, s] = dp
            dhp = dp @ U.T
            if q is not None:
                dhp = dhp * q
            dh = dhp + dh_pass
        # inputs of the recurrent product per step: (h_{s-1} * q)
        hprev = np.empty_like(hs)
        hprev[:, 0] = 0 if s_["h0"] is None else s_["h0"]
        hprev[:, 1:] = hs[:, :-1]
        if q is not None:
            hprev = hprev * q[:, None, :]
        dU = hprev.reshape(B * T, H).T @ dpre.reshape(B * T, H)
        # dpre by time for the input projection
        dpre_t = dpre[:, ::-1] if self.go_backwards else dpre
        xd = s_["x"]
        D = xd.shape[2]
        dW = xd.reshape(B * T, D).T @ dpre_t.reshape(B * T, H)
        dx = (dpre_t.reshape(B * T, H) @ self.kernel.value.T).reshape(B, T, D)
        if s_["dp_mask"] is not None:
            dx = dx * s_["dp_mask"][:, None, :]
        g = {"kernel": dW, "recurrent_kernel": dU, "bias": dpre.sum(axis=(0, 1))}
        return dx, self._weight_grads(g), [dh]
