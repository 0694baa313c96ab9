"""Merge layers: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot (Keras 3)."""
import numpy as np

from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error
from ..ops import core as _ops

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot"]


def _list_shapes(layer, input_shape, minimum=1):
    if not isinstance(input_shape, list) or not all(isinstance(s, tuple) for s in input_shape):
        raise shape_error(layer, "inputs", "a list of tensors", input_shape,
                          f"call it on a list, e.g. {type(layer).__name__}()([a, b]).",
                          message=f"`inputs` must be a list of at least {minimum} tensors, got a "
                                  f"single tensor of shape {format_shape(input_shape)}.")
    if len(input_shape) < minimum:
        raise shape_error(layer, "inputs", f"a list of at least {minimum} tensors", input_shape,
                          message=f"`inputs` must be a list of at least {minimum} tensors, got "
                                  f"{len(input_shape)}.")
    return input_shape


def _shapes_text(shapes):
    return "[" + ", ".join(format_shape(s) for s in shapes) + "]"


class _Merge(Layer):
    """Elementwise merge of a list of tensors with NumPy broadcasting on the non-batch axes."""
    supports_masking = True

    def compute_output_shape(self, input_shape):
        shapes = _list_shapes(self, input_shape, 1)
        batch = [s[0] for s in shapes if s and s[0] is not None]
        if len(set(batch)) > 1:
            raise shape_error(self, "inputs", "one batch size", shapes,
                              message=f"`inputs` must have the same batch size, got shapes "
                                      f"{_shapes_text(shapes)}.")
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = self._broadcast(out, s[1:], shapes)
        return (batch[0] if batch else None,) + out

    def _broadcast(self, a, b, shapes):
        if len(a) < len(b):
            a, b = b, a
        b = (1,) * (len(a) - len(b)) + tuple(b)
        out = []
        for x, y in zip(a, b):
            if x is None or y is None:
                known = [v for v in (x, y) if v is not None and v != 1]
                out.append(known[0] if known else None)
            elif x == y or y == 1:
                out.append(x)
            elif x == 1:
                out.append(y)
            else:
                hint = None
                if len(shapes) == 2 and all(len(s) == 3 for s in shapes) and \
                        shapes[0][1] != shapes[1][1] and shapes[0][2] == shapes[1][2]:
                    hint = ("these are sequences of different lengths "
                            f"({shapes[0][1]} and {shapes[1][1]} timesteps); pad or crop them "
                            "to one length first.")
                raise shape_error(self, "inputs", "shapes that broadcast", shapes, hint,
                                  message=f"`inputs` have incompatible shapes "
                                          f"{_shapes_text(shapes)} (axis sizes {x} and {y}).")
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        if mask is None or not isinstance(mask, (list, tuple)):
            return None
        if any(m is None for m in mask):
            return None
        out = _ops.cast(mask[0], "bool")
        for m in mask[1:]:
            out = _ops.logical_or(out, m)
        return out

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        xs = [np.asarray(x) for x in inputs]
        shapes = [x.shape for x in xs]
        # Keras aligns the batch axes: a lower-rank input gains axes right after the batch
        # axis (not in front, as NumPy broadcasting would put them).
        rank = max(x.ndim for x in xs)
        xs = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        out, saved = self._merge(xs, mask)
        return out, (shapes, [x.shape for x in xs], [x.dtype for x in xs], saved)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        shapes, aligned, dtypes, saved = ctx
        g = np.asarray(d_outputs)
        d = self._merge_backward(saved, g)
        return Grads([None if dk is None else
                      _unbroadcast(dk, al).reshape(sh).astype(dt, copy=False)
                      for dk, al, sh, dt in zip(d, aligned, shapes, dtypes)])

    def _merge(self, xs, mask):
        """``(output, saved)`` from the batch-aligned inputs."""
        raise NotImplementedError

    def _merge_backward(self, saved, g):
        """Gradient for each aligned input, of the output's shape or broadcastable to it."""
        raise NotImplementedError


def _unbroadcast(g, shape):
    """Sum `g` over the axes that broadcasting stretched to reach it from `shape` (same rank)."""
    g = np.broadcast_to(g, np.broadcast_shapes(g.shape, shape))
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, g.shape)) if a == 1 and b != 1)
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    return g


class Add(_Merge):
    """Elementwise sum of a list of tensors (``keras.layers.Add``).

    Raises:
        ShapeError: not a list, or shapes that do not broadcast (e.g. sequences of different lengths).
    """

    def _merge(self, xs, mask):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out, len(xs)

    def _merge_backward(self, n, g):
        return [g] * n


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (``keras.layers.Subtract``)."""

    def compute_output_shape(self, input_shape):
        shapes = _list_shapes(self, input_shape, 2)
        if len(shapes) != 2:
            raise shape_error(self, "inputs", "a list of exactly 2 tensors", shapes,
                              message=f"`inputs` must be a list of exactly 2 tensors, got {len(shapes)}.")
        return super().compute_output_shape(shapes)

    def _merge(self, xs, mask):
        return xs[0] - xs[1], None

    def _merge_backward(self, saved, g):
        return [g, -g]


class Average(_Merge):
    """Elementwise mean (``keras.layers.Average``)."""

    def _merge(self, xs, mask):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return (out / len(xs)).astype(xs[0].dtype), len(xs)

    def _merge_backward(self, n, g):
        return [g / n] * n


def _expand_mask(m, x):
    return np.broadcast_to(np.asarray(m, bool)[..., None], x.shape)


class Multiply(_Merge):
    """Elementwise product (``keras.layers.Multiply``). Keras' mask rule: masked entries count
    as 1; where every input is masked the output is 0."""

    def _merge(self, xs, mask):
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(xs)
        has_out = all(m is not None for m in masks)
        out, out_mask = None, None
        factors, keeps = [], []
        for x, m in zip(xs, masks):
            mb = None
            if m is not None:
                mb = _expand_mask(m, x)
                x = np.where(mb, x, np.asarray(1, x.dtype))
                if has_out:
                    out_mask = mb if out_mask is None else np.logical_or(out_mask, mb)
            factors.append(x)
            keeps.append(mb)
            out = x if out is None else out * x
        if has_out:
            out = np.where(out_mask, out, np.asarray(0, out.dtype))
        return out, (factors, keeps, out_mask)

    def _merge_backward(self, saved, g):
        factors, keeps, out_mask = saved
        if out_mask is not None:
            g = np.where(out_mask, g, 0)
        d = []
        for k, mb in enumerate(keeps):
            # Product of the other factors (no division: factors may be 0).
            dk = g
            for j, f in enumerate(factors):
                if j != k:
                    dk = dk * f
            d.append(dk if mb is None else np.where(mb, dk, 0))
        return d


class _MaxMin(_Merge):
    """Keras' pairwise fold ``out = op(out, x)``, where masked entries take the other operand.

    The gradient of each output entry goes to the input it was taken from. A tie goes to the
    running output (the earlier input), as TensorFlow's Maximum/Minimum gradients (``x >= y`` /
    ``x <= y`` selects the first operand)."""
    _op = None
    _first_wins = None

    def _merge(self, xs, mask):
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(xs)
        full = np.broadcast_shapes(*[x.shape for x in xs])
        out, out_mask, src = None, None, None
        for k, (x, m) in enumerate(zip(xs, masks)):
            mb = _expand_mask(m, x) if m is not None else None
            if out is None:
                out, out_mask = x, mb
                src = np.zeros(full, np.intp)
                continue
            src_x = np.full(full, k, np.intp)
            if mb is not None:
                x = np.where(mb, x, out)
                src_x = np.where(mb, src_x, src)
            if out_mask is not None:
                out = np.where(out_mask, out, x)
                src = np.where(out_mask, src, src_x)
            out_mask = np.logical_or(out_mask, mb) if (mb is not None and out_mask is not None) \
                else None
            src = np.where(type(self)._first_wins(out, x), src, src_x)
            out = type(self)._op(out, x)
        return out, (len(xs), src)

    def _merge_backward(self, saved, g):
        n, src = saved
        return [np.where(src == k, g, 0) for k in range(n)]


class Maximum(_MaxMin):
    """Elementwise maximum (``keras.layers.Maximum``)."""
    _op = np.maximum
    _first_wins = np.greater_equal


class Minimum(_MaxMin):
    """Elementwise minimum (``keras.layers.Minimum``)."""
    _op = np.minimum
    _first_wins = np.less_equal


class Concatenate(Layer):
    """Concatenates a list of tensors along `axis` (``keras.layers.Concatenate``).

    Every axis but `axis` must match. Masks (Keras): a missing mask counts as all-True; masks are
    concatenated and reduced with ``any`` over the last axis.

    Raises:
        ShapeError: not a list, different ranks, or a size mismatch off the concatenation axis —
            with a hint when these are sequences of different lengths.
    """
    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        shapes = _list_shapes(self, input_shape, 1)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise shape_error(self, "inputs", "tensors of one rank", shapes,
                              message=f"`inputs` must all have the same rank, got shapes "
                                      f"{_shapes_text(shapes)}.")
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0 and rank > 0 and self.axis != 0:
            raise shape_error(self, "inputs", f"rank > {abs(self.axis)}", shapes,
                              message=f"`axis={self.axis}` is out of range for inputs of shapes "
                                      f"{_shapes_text(shapes)}.")
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == axis:
                    continue
                if a is not None and b is not None and a != b:
                    hint = None
                    if rank == 3 and i == 1:
                        hint = (f"these are sequences of different lengths ({a} and {b} "
                                f"timesteps); pad them to one length, or concatenate along the "
                                f"time axis with Concatenate(axis=1).")
                    raise shape_error(
                        self, "inputs", f"matching shapes except on axis {self.axis}", shapes, hint,
                        message=f"`inputs` must have matching shapes except on the concatenation "
                                f"axis {self.axis}, got {_shapes_text(shapes)} (axis {i}: {a} != {b}).")
                if a is None:
                    out[i] = b
        sizes = [s[axis] for s in shapes]
        out[axis] = None if any(v is None for v in sizes) else int(sum(sizes))
        return tuple(out)

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        xs = [np.asarray(x) for x in inputs]
        out = np.concatenate(xs, axis=self.axis)
        return out, [x.shape[self.axis] for x in xs]

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        ends = np.cumsum(ctx)[:-1]
        return Grads(np.split(np.asarray(d_outputs), ends, axis=self.axis))

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask):
            if m is None:
                masks.append(_ops.ones_like(x, dtype="bool"))
            elif _ops.ndim(m) < _ops.ndim(x):
                masks.append(_ops.broadcast_to(_ops.expand_dims(_ops.cast(m, "bool"), -1),
                                               _ops.shape(x)))
            else:
                masks.append(_ops.cast(m, "bool"))
        return _ops.any(_ops.concatenate(masks, axis=self.axis), axis=-1)

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


def _l2_normalize(x, axis):
    """Keras' ``x * min(rsqrt(sum(x**2)), 1/1e-7)`` along `axis`: ``(xn, r, clipped)``."""
    r = 1.0 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    clipped = ~(r <= 1e7)  # rsqrt(0) = inf is clipped too
    r = np.minimum(r, 1e7)
    return (x * r).astype(x.dtype, copy=False), r, clipped


def _l2_normalize_backward(saved, d, axis):
    """Gradient through `_l2_normalize`: ``r * (d - xn * sum(d * xn))``, or ``1e7 * d`` where
    the scale was clipped (a constant there)."""
    xn, r, clipped = saved
    free = r * (d - xn * np.sum(d * xn, axis=axis, keepdims=True))
    return np.where(clipped, r * d, free)


class Dot(Layer):
    """Dot product of two tensors along `axes`, per sample (``keras.layers.Dot`` / batch_dot).

    Args:
        axes: int or pair of ints (axes of each input, batch axis excluded from the count
            semantics as in Keras: axis 0 is the batch axis and cannot be used).
        normalize: L2-normalise each input along its dot axis first (cosine similarity).

    Returns:
        x's remaining axes then y's remaining axes; `(B, 1)` when both inputs are (B, n).

    Raises:
        ShapeError: not a list of 2, or dot axes of different sizes.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, int):
            axes = (axes, axes)
        self.axes = tuple(axes)
        self.normalize = normalize

    def _axes(self, shapes):
        return [a % len(s) if a < 0 else a for a, s in zip(self.axes, shapes)]

    def compute_output_shape(self, input_shape):
        shapes = _list_shapes(self, input_shape, 2)
        if len(shapes) != 2:
            raise shape_error(self, "inputs", "a list of 2 tensors", shapes,
                              message=f"`inputs` must be a list of 2 tensors, got {len(shapes)}.")
        b0, b1 = shapes[0][0] if shapes[0] else None, shapes[1][0] if shapes[1] else None
        if b0 is not None and b1 is not None and b0 != b1:
            raise shape_error(self, "inputs", "one batch size", shapes,
                              message=f"`inputs` must have the same batch size, got shapes "
                                      f"{_shapes_text(shapes)}.")
        ax = self._axes(shapes)
        for a, s in zip(ax, shapes):
            if a == 0 or a >= len(s):
                raise shape_error(self, "inputs", f"an axis {a} other than the batch axis", shapes,
                                  message=f"`axes={self.axes}` is invalid for inputs of shapes "
                                          f"{_shapes_text(shapes)}.")
        a, b = shapes[0][ax[0]], shapes[1][ax[1]]
        if a is not None and b is not None and a != b:
            raise shape_error(self, "inputs", f"equal sizes on axes {self.axes}", shapes,
                              message=f"`inputs` must have equal sizes on the dot axes "
                                      f"{self.axes}, got {a} != {b} for shapes {_shapes_text(shapes)}.")
        x_rest = [d for i, d in enumerate(shapes[0]) if i not in (0, ax[0])]
        y_rest = [d for i, d in enumerate(shapes[1]) if i not in (0, ax[1])]
        out = (shapes[0][0],) + tuple(x_rest) + tuple(y_rest)
        if len(out) == 1:
            out = out + (1,)
        return out

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x, y = (np.asarray(v) for v in inputs)
        ax = self._axes([x.shape, y.shape])
        norms = (None, None)
        if self.normalize:
            x, rx, cx = _l2_normalize(x, ax[0])
            y, ry, cy = _l2_normalize(y, ax[1])
            norms = ((x, rx, cx), (y, ry, cy))
        xm = np.moveaxis(x, ax[0], -1)
        ym = np.moveaxis(y, ax[1], 1)
        B = x.shape[0]
        xr = xm.reshape(B, -1, xm.shape[-1])
        yr = ym.reshape(B, ym.shape[1], -1)
        out = np.matmul(xr, yr).reshape((B,) + xm.shape[1:-1] + ym.shape[2:])
        if out.ndim == 1:
            out = out[:, None]
        return out, (ax, xm.shape, ym.shape, xr, yr, norms)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        ax, xm_shape, ym_shape, xr, yr, norms = ctx
        g = np.asarray(d_outputs).reshape(xr.shape[0], xr.shape[1], yr.shape[2])
        dx = np.moveaxis(np.matmul(g, np.swapaxes(yr, 1, 2)).reshape(xm_shape), -1, ax[0])
        dy = np.moveaxis(np.matmul(np.swapaxes(xr, 1, 2), g).reshape(ym_shape), 1, ax[1])
        if self.normalize:
            dx = _l2_normalize_backward(norms[0], dx, ax[0])
            dy = _l2_normalize_backward(norms[1], dy, ax[1])
        return Grads([dx.astype(xr.dtype, copy=False), dy.astype(yr.dtype, copy=False)])

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axes=self.axes, normalize=self.normalize)
        return cfg

