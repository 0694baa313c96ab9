"""Figures for sequence models: attention heat-maps, training curves, reconstructions, anomaly scores.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``. A figure
this module creates is closed in pyplot right away, so a notebook shows it exactly once, when it is
a cell's value (``fig`` or the call itself as the last line), and scripts save it with
``fig.savefig(...)``; pass ``ax=`` to draw into axes you own instead. matplotlib is imported inside
the functions, so ``import attnlstm`` does not need it (``pip install attnlstm[demo]`` does). Works
with any backend, ``Agg`` included.

Shape mistakes are :class:`attnlstm.ShapeError` with the usual message::

    plot.reconstruction: `x_hat` must have shape (4, 20, 3) (the shape of `x`), got (4, 10, 3).
    Hint: the reconstruction has 10 steps for 20 input steps; a decoder's RepeatVector(n) must
    repeat n = timesteps.

Example::

    >>> import numpy as np
    >>> from attnlstm import plot
    >>> w = np.random.default_rng(0).dirichlet(np.ones(6), size=(2, 4))   # (NH=2, Tq=4, Tv=6)
    >>> fig = plot.attention_heatmap(w, key_labels=list("abcdef"))
    >>> len(fig.axes)   # two heads and one shared colorbar
    3
"""
import math

import numpy as np

from .errors import format_shape, shape_error

__all__ = ["attention_heatmap", "training_curves", "reconstruction", "anomaly_scores"]

# Tick labels shown per axis before thinning to every k-th one (long sequences stay readable).
MAX_TICK_LABELS = 40
# Heads per row of the multi-head grid.
MAX_GRID_COLUMNS = 4


def _new_figure(nrows, ncols, figsize, **kwargs):
    """A figure with an (nrows, ncols) array of axes, closed in pyplot so it displays once."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained",
                             **kwargs)
    plt.close(fig)
    return fig, axes


def _as_array(x, who, argument, dtype=float):
    """x as a NumPy array (Keras/attnlstm tensors, lists, Variables); a clear error otherwise."""
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{who}: `{argument}` must be an array of numbers, got "
                        f"{type(x).__name__} ({err}).") from None


def _check_labels(who, argument, labels, n, axis_name):
    """labels as a list of str, one per step of an axis of size n."""
    if labels is None:
        return None
    labels = list(labels)
    if len(labels) != n:
        raise shape_error(
            who, argument, (n,), (len(labels),),
            message=f"`{argument}` must have one label per {axis_name} step ({n}), "
                    f"got {len(labels)} labels.",
            hint=f"{axis_name} has {n} steps; pass {n} labels, or None for step numbers.")
    return [str(v) for v in labels]


def _set_tick_labels(ax, axis, labels):
    """Ticks at every step (every k-th one when there are more than MAX_TICK_LABELS)."""
    if labels is None:  # step numbers: whole steps only
        from matplotlib.ticker import MaxNLocator
        axis_obj = ax.xaxis if axis == "x" else ax.yaxis
        axis_obj.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        return
    step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
    pos = list(range(0, len(labels), step))
    shown = [labels[i] for i in pos]
    if axis == "x":
        rotate = 90 if max((len(s) for s in shown), default=0) > 3 else 0
        ax.set_xticks(pos, shown, rotation=rotate)
    else:
        ax.set_yticks(pos, shown)


def _pick_sample(who, arr, sample, argument, batched_rank):
    """arr[sample] when arr has the batched rank, with a clear error for a bad index."""
    if sample is None:
        return arr
    if arr.ndim != batched_rank:
        raise shape_error(
            who, argument, "a batch (B, ...) to take `sample` from", arr.shape,
            message=f"`sample={sample}` needs a batched `{argument}` of rank {batched_rank}, "
                    f"got shape {format_shape(arr.shape)}.",
            hint="drop sample= for a single sequence.")
    n = arr.shape[0]
    if not isinstance(sample, (int, np.integer)) or not -n <= sample < n:
        raise IndexError(f"{who}: `sample` must be an int in [{-n}, {n}) for a batch of {n}, "
                         f"got {sample!r}.")
    return arr[sample]


def attention_heatmap(weights, query_labels=None, key_labels=None, heads=None, sample=None,
                      title=None, ax=None, cmap="viridis", colorbar=True, figsize=None):
    """Draw attention weights as a heat-map: rows are query steps, columns key/value steps.

    Args:
        weights: attention weights (any array-like, converted to float64), one of
            - `(Tv,)`: attention-pooling weights of one sequence, drawn as a single row;
            - `(Tq, Tv)`: one sequence (``Attention(..., return_attention_scores=True)`` gives
              `(B, Tq, Tv)`: pass ``sample=`` or index it);
            - `(NH, Tq, Tv)`: one sequence of a multi-head attention, one panel per head,
              titled ``head k``, with one colour scale and colorbar shared by all heads;
            - with ``sample=b``: `(B, Tv)`, `(B, Tq, Tv)` or `(B, NH, Tq, Tv)` (as
              ``MultiHeadAttention(..., return_attention_scores=True)`` returns), of which
              sample ``b`` is drawn.
        query_labels: `Tq` labels (str or numbers: tokens, times) for the rows, or None.
        key_labels: `Tv` labels for the columns, or None.
        heads: which heads to draw (list of ints) for multi-head weights; None draws all.
        sample: index into the batch axis (see `weights`); None when `weights` is one sequence.
            A 3-D `weights` is read as `(NH, Tq, Tv)` without it and as `(B, Tq, Tv)` with it.
        title: figure title (the axes title for a single map), or None.
        ax: a matplotlib Axes to draw a single map into, or a sequence of Axes, one per drawn
            head; None creates a new figure.
        cmap: matplotlib colormap name.
        colorbar: add a colorbar (one, shared, for several heads).
        figsize: (width, height) in inches for a new figure; None sizes it from Tq and Tv.

    Returns:
        The matplotlib Figure. Its heat-map axes come first in ``fig.axes`` (one per drawn head),
        then the colorbar axes; ``ax.images[0].get_array()`` holds the weights drawn.

    Raises:
        ShapeError: a rank that is none of the above, labels of the wrong length, ``sample=``
            on an unbatched array, or a number of `ax` that is not the number of heads drawn.
        IndexError: a `sample` or head index out of range.
    """
    who = "plot.attention_heatmap"
    w = _as_array(weights, who, "weights")
    expected = "(Tv,), (Tq, Tv) or (NH, Tq, Tv), or with sample=: (B, Tv), (B, Tq, Tv) or (B, NH, Tq, Tv)"
    if sample is not None:
        if w.ndim not in (2, 3, 4):
            raise shape_error(who, "weights", expected, w.shape,
                              hint="with sample=, weights need a batch axis first.")
        w = _pick_sample(who, w, sample, "weights", w.ndim)
    if w.ndim == 4:
        raise shape_error(who, "weights", expected, w.shape,
                          hint="this looks like a batch of multi-head weights (B, NH, Tq, Tv); "
                               "pass sample=b to draw sequence b.")
    if w.ndim not in (1, 2, 3):
        raise shape_error(who, "weights", expected, w.shape,
                          hint="scalars cannot be drawn as a heat-map." if w.ndim == 0 else None)
    pooling = w.ndim == 1
    if pooling:
        w = w[None, :]
    multi = w.ndim == 3
    stack = w if multi else w[None]
    nh, tq, tv = stack.shape
    if heads is None:
        head_ids = list(range(nh))
    else:
        if not multi:
            raise shape_error(who, "weights", "(NH, Tq, Tv)", w.shape,
                              message=f"`heads` needs multi-head weights (NH, Tq, Tv), got "
                                      f"{format_shape(w.shape)}.",
                              hint="drop heads= for single-head attention.")
        head_ids = [int(h) for h in np.atleast_1d(heads)]
        for h in head_ids:
            if not -nh <= h < nh:
                raise IndexError(f"{who}: head {h} out of range for {nh} heads.")
        head_ids = [h % nh for h in head_ids]
    qlab = None if pooling else _check_labels(who, "query_labels", query_labels, tq, "query (Tq)")
    if pooling and query_labels is not None:
        qlab = _check_labels(who, "query_labels", query_labels, 1, "pooled query")
    klab = _check_labels(who, "key_labels", key_labels, tv, "key/value (Tv)")

    n = len(head_ids)
    if ax is None:
        ncols = min(n, MAX_GRID_COLUMNS)
        nrows = math.ceil(n / ncols)
        if figsize is None:
            cell_w = min(10.0, max(3.0, 0.3 * tv + 1.5)) if n == 1 else min(4.0, max(2.5, 0.2 * tv + 1.0))
            cell_h = (1.6 if tq == 1 else min(8.0, max(2.5, 0.3 * tq + 1.0))) if n == 1 \
                else min(4.0, max(2.2, 0.2 * tq + 1.0))
            figsize = (cell_w * ncols + (1.0 if colorbar else 0.0), cell_h * nrows + (0.4 if title else 0))
        fig, grid = _new_figure(nrows, ncols, figsize)
        axes = list(grid.ravel())
        for extra in axes[n:]:
            fig.delaxes(extra)
        axes = axes[:n]
    else:
        axes = [ax] if not isinstance(ax, (list, tuple, np.ndarray)) else list(np.ravel(ax))
        if len(axes) != n:
            raise shape_error(who, "ax", (n,), (len(axes),),
                              message=f"`ax` must be one Axes per drawn head ({n}), got {len(axes)}.",
                              hint="pass ax=None to get a new figure with a grid of heads.")
        fig = axes[0].figure

    finite = stack[head_ids][np.isfinite(stack[head_ids])]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = None
    for a, h in zip(axes, head_ids):
        im = a.imshow(stack[h], aspect="auto", interpolation="nearest", cmap=cmap,
                      vmin=vmin, vmax=vmax)
        _set_tick_labels(a, "x", klab)
        a.set_xlabel("key / value step")
        if pooling:
            if qlab is None:
                a.set_yticks([])
            else:
                _set_tick_labels(a, "y", qlab)
        else:
            _set_tick_labels(a, "y", qlab)
            a.set_ylabel("query step")
        if multi:
            a.set_title(f"head {h}")
    if colorbar:
        fig.colorbar(im, ax=axes if len(axes) > 1 else axes[0], label="attention weight")
    if title is not None:
        if multi:
            fig.suptitle(title)
        else:
            axes[0].set_title(title)
    return fig


def _history_dict(history):
    """The {name: list of per-epoch values} of a History (``.history``) or of a dict."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError("plot.training_curves: `history` must be a History (with a `.history` "
                        f"dict, as fit returns) or a dict of lists, got {type(history).__name__}.")
    return h


def training_curves(history, metrics=None, ax=None, title=None, figsize=None):
    """Plot training curves, one panel per metric with its ``val_`` twin on the same axes.

    Args:
        history: what ``Model.fit`` returns (an object whose ``.history`` is a dict of per-epoch
            lists, as Keras' ``History``) or such a dict directly, e.g.
            ``{"loss": [...], "val_loss": [...], "accuracy": [...]}``.
        metrics: names to draw, e.g. ``["loss"]``; None draws every name without the ``val_``
            prefix (and a ``val_`` name that has no training twin), in the dict's order.
        ax: an Axes (one metric) or a sequence of Axes (one per metric); None creates a figure
            with the panels side by side.
        title: figure title, or None.
        figsize: (width, height) in inches for a new figure.

    Returns:
        The matplotlib Figure; panel k shows metric k against epochs 1, 2, ... (the training
        line labelled with the metric's name, validation with its ``val_`` name).

    Raises:
        TypeError: `history` is neither a History nor a dict.
        ValueError: an empty history, or a metric that is not in it (the message lists them).
        ShapeError: a number of `ax` that is not the number of metrics.
    """
    from matplotlib.ticker import MaxNLocator

    who = "plot.training_curves"
    h = _history_dict(history)
    if not h:
        raise ValueError(f"{who}: the history is empty (no epoch was recorded).")
    if metrics is None:
        metrics = [k for k in h if not k.startswith("val_")]
        metrics += [k for k in h if k.startswith("val_") and k[4:] not in h]
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        for m in metrics:
            if m not in h and f"val_{m}" not in h:
                raise ValueError(f"{who}: no metric {m!r} in the history; it has {sorted(h)}.")
    n = len(metrics)
    if ax is None:
        fig, grid = _new_figure(1, n, figsize or (4.2 * n, 3.2))
        axes = list(grid.ravel())
    else:
        axes = [ax] if not isinstance(ax, (list, tuple, np.ndarray)) else list(np.ravel(ax))
        if len(axes) != n:
            raise shape_error(who, "ax", (n,), (len(axes),),
                              message=f"`ax` must be one Axes per metric ({n}: {metrics}), "
                                      f"got {len(axes)}.")
        fig = axes[0].figure
    for a, m in zip(axes, metrics):
        for name, style in ((m, "-"), (f"val_{m}", "--")):
            if name in h:
                y = np.asarray(h[name], dtype=float).ravel()
                a.plot(np.arange(1, len(y) + 1), y, style, marker="o" if len(y) < 30 else None,
                       markersize=3, label=name)
        a.set_title(m)
        a.set_xlabel("epoch")
        a.grid(True, alpha=0.3)
        a.legend()
        a.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs
    if title is not None:
        fig.suptitle(title)
    return fig


def reconstruction(x, x_hat, mask=None, features=None, sample=0, feature_names=None, title=None,
                   ax=None, figsize=None):
    """Overlay a sequence and its reconstruction (e.g. an LSTM autoencoder's), one panel per feature.

    Args:
        x: the input, `(T, F)` for one sequence, `(B, T, F)` for a batch (``sample`` picks one),
            or `(T,)` for one univariate sequence.
        x_hat: the reconstruction, the same shape as `x`.
        mask: bool `(T,)`, or `(B, T)` with a batch; padded steps (False) are not drawn, and are
            left out of each panel's mean squared error. None draws every step.
        features: feature indices to draw (list of ints); None draws all `F`.
        sample: which sequence of a batched `x` to draw.
        feature_names: `F` names for the panel titles, or None for ``feature k``.
        title: figure title, or None.
        ax: a sequence of Axes, one per drawn feature (or one Axes for one feature); None
            creates a figure with the panels stacked, sharing the time axis.
        figsize: (width, height) in inches for a new figure.

    Returns:
        The matplotlib Figure; each panel has two lines, the input (``lines[0]``, label
        ``input``) and the reconstruction (``lines[1]``, dashed, label ``reconstruction``),
        against steps 0..T-1, with NaN at masked steps; its title carries the feature's MSE.

    Raises:
        ShapeError: `x` of rank other than 1, 2 or 3, `x_hat` not the shape of `x`, a mask that
            is not `(T,)` / `(B, T)`, or feature names / `ax` of the wrong length.
        IndexError: a `sample` or feature index out of range.
    """
    who = "plot.reconstruction"
    x = _as_array(x, who, "x")
    x_hat = _as_array(x_hat, who, "x_hat")
    if x.ndim not in (1, 2, 3):
        raise shape_error(who, "x", "(T, F), (T,) or (B, T, F) with sample=", x.shape)
    if x_hat.shape != x.shape:
        hint = None
        if x.ndim >= 2 and x_hat.ndim == x.ndim and x_hat.shape[-2] != x.shape[-2]:
            hint = (f"the reconstruction has {x_hat.shape[-2]} steps for {x.shape[-2]} input steps; "
                    "a decoder's RepeatVector(n) must repeat n = timesteps.")
        elif x_hat.ndim == x.ndim - 1:
            hint = "the decoder returns one vector per sequence; give its last LSTM return_sequences=True."
        raise shape_error(who, "x_hat", format_shape(x.shape) + " (the shape of `x`)", x_hat.shape,
                          hint=hint)
    batched = x.ndim == 3
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        want = x.shape[:-1] if x.ndim >= 2 else x.shape
        if mask.shape != want:
            raise shape_error(who, "mask", ("B", "T") if batched else ("T",), mask.shape,
                              message=f"`mask` must have shape {format_shape(want)} (one flag per "
                                      f"step of `x` {format_shape(x.shape)}), got "
                                      f"{format_shape(mask.shape)}.",
                              hint="a mask has no feature axis: use mask[..., 0] or x.any(-1)."
                              if mask.shape == x.shape else None)
    if batched:
        x = _pick_sample(who, x, sample, "x", 3)
        x_hat = x_hat[sample]
        if mask is not None:
            mask = mask[sample]
    if x.ndim == 1:
        x, x_hat = x[:, None], x_hat[:, None]
    T, F = x.shape
    feats = list(range(F)) if features is None else [int(f) for f in np.atleast_1d(features)]
    for f in feats:
        if not -F <= f < F:
            raise IndexError(f"{who}: feature {f} out of range for {F} features.")
    feats = [f % F for f in feats]
    names = _check_labels(who, "feature_names", feature_names, F, "feature (F)") \
        if feature_names is not None else [f"feature {k}" for k in range(F)]
    if mask is not None:
        x = np.where(mask[:, None], x, np.nan)
        x_hat = np.where(mask[:, None], x_hat, np.nan)
    n = len(feats)
    if ax is None:
        fig, grid = _new_figure(n, 1, figsize or (8.0, min(2.0 * n + 0.5, 14.0)), sharex=True)
        axes = list(grid.ravel())
    else:
        axes = [ax] if not isinstance(ax, (list, tuple, np.ndarray)) else list(np.ravel(ax))
        if len(axes) != n:
            raise shape_error(who, "ax", (n,), (len(axes),),
                              message=f"`ax` must be one Axes per drawn feature ({n}), got {len(axes)}.")
        fig = axes[0].figure
    t = np.arange(T)
    for a, f in zip(axes, feats):
        a.plot(t, x[:, f], "-", color="C0", label="input")
        a.plot(t, x_hat[:, f], "--", color="C1", label="reconstruction")
        err = (x[:, f] - x_hat[:, f]) ** 2
        mse = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
        a.set_title(f"{names[f]}  (MSE {mse:.3g})", fontsize="medium")
        a.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right")
    axes[-1].set_xlabel("time step")
    axes[-1].set_xlim(-0.5, T - 0.5)  # padded steps keep their place on the time axis
    if title is not None:
        fig.suptitle(title)
    return fig


def _runs(flags):
    """[(start, stop)] of the runs of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def anomaly_scores(signal, scores, labels=None, window=None, stride=1, threshold=None, title=None,
                   signal_label="signal", figsize=None):
    """A long series with its labelled anomalies shaded (top) and per-window anomaly scores (bottom).

    Args:
        signal: the series, `(T,)`, or `(T, F)` drawn as F lines.
        scores: anomaly scores, `(W,)`: one per window when `window` is given (window k covers
            steps ``k*stride .. k*stride + window - 1`` and is drawn at its center
            ``k*stride + (window - 1) / 2``), else one per time step (`W` = `T`).
        labels: `(T,)` ground truth, 1 (or True) at anomalous steps; each anomalous run is shaded
            on both panels. None draws no shading.
        window: window length in steps, or None for per-step scores.
        stride: steps between window starts (`W` must equal ``(T - window) // stride + 1``).
        threshold: draw a horizontal line at this score and mark the windows above it; or None.
        title: figure title, or None.
        signal_label: legend label of the series.
        figsize: (width, height) in inches.

    Returns:
        The matplotlib Figure with two axes sharing the time axis: ``axes[0]`` the signal
        (``lines[0]`` holds it against steps 0..T-1), ``axes[1]`` the scores (``lines[0]`` at
        the window centers).

    Raises:
        ShapeError: `signal` not `(T,)`/`(T, F)`, `scores` not 1-D, `labels` not `(T,)`, or a
            number of scores that does not match `T`, `window` and `stride`.
        ValueError: `window` not in 1..T or `stride` < 1.
    """
    import matplotlib.patches as mpatches

    who = "plot.anomaly_scores"
    s = _as_array(signal, who, "signal")
    if s.ndim not in (1, 2):
        raise shape_error(who, "signal", "(T,) or (T, F)", s.shape,
                          hint="draw one sequence of a batch: signal[b]." if s.ndim == 3 else None)
    T = s.shape[0]
    sc = _as_array(scores, who, "scores")
    if sc.ndim == 2 and 1 in sc.shape:
        sc = sc.ravel()
    if sc.ndim != 1:
        raise shape_error(who, "scores", ("W",), sc.shape,
                          hint="one score per window: reduce per-step errors first, e.g. "
                               "err.mean(axis=(1, 2)) for windows (W, window, F).")
    if window is None:
        if sc.shape[0] != T:
            raise shape_error(who, "scores", (T,), sc.shape,
                              message=f"`scores` must have one score per time step ({T}) when "
                                      f"`window` is None, got {format_shape(sc.shape)}.",
                              hint="for one score per window, pass window= and stride=.")
        centers = np.arange(T, dtype=float)
    else:
        window, stride = int(window), int(stride)
        if not 1 <= window <= T:
            raise ValueError(f"{who}: `window` must be in 1..T ({T}). Received: window={window}")
        if stride < 1:
            raise ValueError(f"{who}: `stride` must be >= 1. Received: stride={stride}")
        W = (T - window) // stride + 1
        if sc.shape[0] != W:
            raise shape_error(who, "scores", (W,), sc.shape,
                              message=f"`scores` must have one score per window: windows of "
                                      f"{window} steps with stride {stride} over {T} steps give "
                                      f"{W}, got {format_shape(sc.shape)}.",
                              hint="check window= and stride= against how the windows were cut.")
        centers = np.arange(W) * stride + (window - 1) / 2.0
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (T,):
            raise shape_error(who, "labels", (T,), lab.shape,
                              hint="one 0/1 label per time step of `signal`.")
        lab = lab.astype(bool)

    fig, grid = _new_figure(2, 1, figsize or (11.0, 5.0), sharex=True,
                            gridspec_kw={"height_ratios": [2, 1]})
    top, bottom = grid[0, 0], grid[1, 0]
    t = np.arange(T)
    if s.ndim == 1:
        top.plot(t, s, lw=0.8, color="C0", label=signal_label)
    else:
        for f in range(s.shape[1]):
            top.plot(t, s[:, f], lw=0.8, label=f"{signal_label} {f}")
    bottom.plot(centers, sc, "-", color="C2", lw=1.0, marker="." if len(sc) < 200 else None,
                label="anomaly score")
    if lab is not None:
        for a in (top, bottom):
            for start, stop in _runs(lab):
                a.axvspan(start - 0.5, stop - 0.5, color="C3", alpha=0.2, lw=0)
        top.legend(handles=top.get_lines()[:1] + [mpatches.Patch(color="C3", alpha=0.2,
                                                                  label="labelled anomaly")],
                   loc="upper right")
    else:
        top.legend(loc="upper right")
    if threshold is not None:
        bottom.axhline(threshold, color="C3", ls="--", lw=1.0, label=f"threshold {threshold:g}")
        above = sc > threshold
        if above.any():
            bottom.plot(centers[above], sc[above], "o", color="C3", ms=3, label="above threshold")
    bottom.legend(loc="upper right")
    top.set_ylabel(signal_label)
    bottom.set_ylabel("score")
    bottom.set_xlabel("time step" if window is None else f"time step (window centers, window "
                                                         f"{window}, stride {stride})")
    top.grid(True, alpha=0.3)
    bottom.grid(True, alpha=0.3)
    if title is not None:
        fig.suptitle(title)
    return fig
