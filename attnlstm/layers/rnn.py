"""The LSTM layer (Keras 3 ``keras.layers.LSTM``) on the C kernel."""
import numpy as np

from .. import activations, backend, initializers, ops
from ..engine.base import Grads, Layer, check_time_mask
from ..errors import format_shape, shape_error

__all__ = ["LSTM"]


class LSTM(Layer):
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
        ValueError: an activation the C kernel does not implement.

    Example:
        >>> LSTM(4, return_sequences=True)(np.zeros((2, 10, 3))).shape
        (2, 10, 4)
    """
    supports_masking = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 use_cudnn="auto", zero_output_for_mask=False, implementation=2, **kwargs):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive "
                             f"integer, got {units}.")
        for nm, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Received an invalid value for argument `{nm}`, expected a float "
                                 f"between 0 and 1, got {v}.")
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        # Fail at construction for activations the kernel does not implement.
        self._act_code = activations.c_code(activation, "activation", self)
        self._ract_code = activations.c_code(recurrent_activation, "recurrent_activation", self)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self._rng = backend.make_rng(seed)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.states = None

    # -- shapes -------------------------------------------------------------------------------

    def _feature_axis(self):
        return self.kernel.shape[0] if self.built else "features"

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            fallback = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                fallback = "an LSTM reads whole sequences; add a time axis, e.g. x[:, None, :]."
            elif isinstance(input_shape, list):
                fallback = ("an LSTM takes one sequence tensor; pass initial states as "
                            "initial_state=[h, c].")
            elif isinstance(input_shape, tuple) and len(input_shape) == 4:
                fallback = "the inputs have one axis too many; an LSTM reads (batch, timesteps, features)."
            raise shape_error(self, "inputs", ("batch", "timesteps", self._feature_axis()),
                              input_shape, fallback_hint=fallback)
        B, T, D = input_shape
        if D is None:
            raise shape_error(self, "inputs", (B if B is not None else "batch",
                                               T if T is not None else "timesteps", "features"),
                              input_shape, "the feature axis of an LSTM input must have a known size.")
        if self.built and D != self.kernel.shape[0]:
            raise shape_error(
                self, "inputs", ("batch", "timesteps", self.kernel.shape[0]), input_shape,
                f"this LSTM was built for {self.kernel.shape[0]} features; a layer instance keeps "
                f"its weights, so use a new LSTM for inputs of {D} features.")
        if T == 0:
            raise shape_error(self, "inputs", ("batch", "timesteps >= 1", D), input_shape,
                              "an LSTM needs at least one timestep.")
        if self.stateful and B is None:
            raise shape_error(
                self, "inputs", ("batch (fixed)", "timesteps", D), input_shape,
                "a stateful LSTM keeps one state per sample, so it needs a fixed batch size: "
                "Input(shape=..., batch_size=N) or Input(batch_shape=(N, T, D)).")
        H = self.units
        out = (B, T, H) if self.return_sequences else (B, H)
        if self.return_state:
            return [out, (B, H), (B, H)]
        return out

    def validate_call(self, input_shape, mask=None, initial_state=None, **kwarg_shapes):
        B = input_shape[0]
        if mask is not None:
            check_time_mask(self, "mask", input_shape, mask)
        if initial_state is not None:
            states = initial_state if isinstance(initial_state, list) else [initial_state]
            want = (B if B is not None else "batch", self.units)
            if len(states) != 2:
                raise shape_error(
                    self, "initial_state", [want, want], states,
                    "an LSTM has two states: pass initial_state=[h, c].",
                    message=f"`initial_state` must be a list [h, c] of two {format_shape(want)} "
                            f"tensors, got {len(states)}: "
                            f"[{', '.join(format_shape(s) for s in states)}].")
            for k, s in enumerate(states):
                s = tuple(s)
                ok = len(s) == 2 and s[1] == self.units and (B is None or s[0] is None or s[0] == B)
                if not ok:
                    hint = None
                    if len(s) == 3:
                        hint = ("that is a sequence; pass final states, e.g. from "
                                "LSTM(..., return_state=True), which returns [output, h, c].")
                    elif len(s) == 2 and s[1] != self.units:
                        hint = (f"the states must have this LSTM's units ({self.units}); they "
                                f"have {s[1]} (an encoder with a different size?).")
                    raise shape_error(self, f"initial_state[{k}]", want, s, hint)

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask, None, None]
        return out_mask

    def compute_mask_flags(self, input_has_mask, output_structure):
        flag = bool(input_has_mask) and self.return_sequences
        if self.return_state:
            return [flag, False, False]
        return flag

    # -- weights ------------------------------------------------------------------------------

    def build(self, input_shape):
        D, H = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (D, 4 * H), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (H, 4 * H),
                                                self.recurrent_initializer)
        if self.use_bias:
            if self.unit_forget_bias:
                init = self.bias_initializer

                def bias_init(shape, dtype, rng):
                    return np.concatenate([init((H,), dtype, rng), np.ones((H,), dtype),
                                           init((2 * H,), dtype, rng)])
                self.bias = self.add_weight("bias", (4 * H,), bias_init)
            else:
                self.bias = self.add_weight("bias", (4 * H,), self.bias_initializer)
        else:
            self.bias = None
        self.built = True

    # -- computing ----------------------------------------------------------------------------

    def reset_states(self, states=None):
        """Clear a stateful LSTM's states (zeros next call), or set them to ``[h, c]``."""
        if not self.stateful:
            raise AttributeError(f"LSTM '{self.name}' is not stateful; pass stateful=True.")
        if states is None:
            self.states = None
            return
        dt = self.dtype
        h, c = (np.ascontiguousarray(s, dtype=dt) for s in states)
        for k, s in enumerate((h, c)):
            if s.ndim != 2 or s.shape[1] != self.units:
                raise shape_error(self, f"states[{k}]", ("batch", self.units), s.shape)
        self.states = [h, c]

    def call(self, inputs, mask=None, initial_state=None, training=False):
        # no backward follows a plain call: the kernel need not keep the gates
        return self._forward(inputs, mask, initial_state, training, save_gates=False)[0]

    def _dropout_mask(self, B, n, rate, gates):
        """Keras' ``dropout(ones((B, n)), rate)``: kept entries are 1 / (1 - rate)."""
        keep = self._rng.random((B, gates * n)) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    def forward(self, inputs, mask=None, initial_state=None, training=False):
        return self._forward(inputs, mask, initial_state, training, save_gates=True)

    def _forward(self, inputs, mask, initial_state, training, save_gates):
        x = inputs
        B = x.shape[0]
        own_state = initial_state is not None
        if initial_state is None and self.stateful and self.states is not None:
            if self.states[0].shape[0] != B:
                raise shape_error(
                    self, "inputs", (self.states[0].shape[0], "timesteps", x.shape[2]), x.shape,
                    "a stateful LSTM needs the same batch size at every call; call reset_states() "
                    "to start over.")
            initial_state = self.states
        # Dropout as Keras 3.15.1 draws it: with recurrent_dropout the cell runs implementation
        # 1 with one mask per gate for x and for h_{t-1}; with dropout alone one (B, D) mask on x,
        # the same at every step.
        dp_mask = rec_mask = x_scale = None
        if training and self.recurrent_dropout > 0:
            rec_mask = self._dropout_mask(B, self.units, self.recurrent_dropout, 4)
            if self.dropout > 0:
                dp_mask = self._dropout_mask(B, x.shape[2], self.dropout, 4)
        elif training and self.dropout > 0:
            x_scale = self._dropout_mask(B, x.shape[2], self.dropout, 1)
            x = x * x_scale[:, None, :]
        r = ops.lstm_forward(
            x, self.kernel.value, self.recurrent_kernel.value,
            self.bias.value if self.use_bias else None, initial_state, mask,
            self.activation, self.recurrent_activation, self.go_backwards,
            dtype=self.dtype, name=f"LSTM '{self.name}'", rec_mask=rec_mask, dp_mask=dp_mask,
            save_gates=save_gates)
        outputs = r["outputs"]
        out_mask = None
        if self.zero_output_for_mask and mask is not None:
            out_mask = np.asarray(mask, bool)
            if self.go_backwards:
                out_mask = out_mask[:, ::-1]
            outputs = np.where(out_mask[:, :, None], outputs, np.asarray(0, outputs.dtype))
        last = outputs[:, -1]
        if self.stateful:
            self.states = [np.array(r["h"]), np.array(r["c"])]
        out = outputs if self.return_sequences else np.ascontiguousarray(last)
        if self.return_state:
            out = [out, np.ascontiguousarray(r["h"]), np.ascontiguousarray(r["c"])]
        return out, (r, out_mask, x_scale, own_state)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        r, out_mask, x_scale, own_state = ctx
        d_h = d_c = None
        if self.return_state:
            d_out, d_h, d_c = d_outputs
        else:
            d_out = d_outputs
        d_seq = d_last = None
        if self.return_sequences:
            d_seq = d_out if out_mask is None else np.where(out_mask[:, :, None], d_out, 0)
        else:
            d_last = d_out if out_mask is None else np.where(out_mask[:, -1:], d_out, 0)
        g = ops.lstm_backward(r, d_outputs=d_seq, d_h=d_h, d_c=d_c, d_last_output=d_last,
                              name=f"LSTM '{self.name}'")
        weights = {self.kernel: g["kernel"], self.recurrent_kernel: g["recurrent_kernel"]}
        if self.use_bias:
            weights[self.bias] = g["bias"]
        dx = g["x"]
        if x_scale is not None:
            dx = dx * x_scale[:, None, :]
        kw = {"initial_state": [g["h0"], g["c0"]]} if own_state else None
        return Grads(dx, weights, kwargs=kw)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            units=self.units, activation=activations.serialize(self.activation),
            recurrent_activation=activations.serialize(self.recurrent_activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            unit_forget_bias=self.unit_forget_bias, dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout, seed=self.seed,
            return_sequences=self.return_sequences, return_state=self.return_state,
            go_backwards=self.go_backwards, stateful=self.stateful, unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask)
        return cfg
