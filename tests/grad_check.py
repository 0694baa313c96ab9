"""Finite-difference checks of Layer.backward / Model.backward (float64).

The loss is a fixed random projection of the outputs, ``L = sum_k <R_k, out_k>``, so its
gradient w.r.t. each output is ``R_k``. The analytic gradients from ``backward`` are compared with
central differences of L for every weight entry and input entry (a random subset when large).
"""
import numpy as np

from attnlstm.engine.base import flatten, map_structure


def _projection(out, rng):
    return map_structure(lambda o: rng.standard_normal(np.shape(o)), out)


def _loss(out, R):
    return float(sum(np.sum(np.asarray(o, np.float64) * r) for o, r in zip(flatten(out), flatten(R))))


def run(layer, args, kwargs=None, training=False):
    """Outputs and ctx of one recorded call."""
    return layer._eager_call(tuple(args), dict(kwargs or {}), training=training, record=True)


def _entries(size, rng, max_entries):
    if size <= max_entries:
        return np.arange(size)
    return rng.choice(size, max_entries, replace=False)


def _rel_err(a, n):
    a, n = np.asarray(a, np.float64).ravel(), np.asarray(n, np.float64).ravel()
    scale = max(np.max(np.abs(a)), np.max(np.abs(n)), 1e-12) if a.size else 1.0
    return float(np.max(np.abs(a - n)) / scale) if a.size else 0.0


def check_layer(layer, args, kwargs=None, training=False, eps=1e-6, max_entries=40, seed=0,
                input_args=None, kwarg_paths=(), rtol=1e-6, reset_rng=None):
    """Assert that ``layer.backward`` matches central differences.

    Args:
        layer: a float64 layer (built or not).
        args: positional arrays of the call (args[0] = inputs, possibly a list).
        kwargs: keyword arguments of the call (masks, initial_state ...).
        input_args: which positions of `args` to check (default: 0, if it is float).
        kwarg_paths: (name, index-or-None) pairs of kwargs to check, e.g. ("initial_state", 0).
        reset_rng: callable run before each forward (so dropout draws the same masks).

    Returns:
        dict name -> relative error (all asserted <= rtol).
    """
    rng = np.random.default_rng(seed)
    kwargs = dict(kwargs or {})
    args = list(args)
    if reset_rng:
        reset_rng()
    out, ctx = run(layer, args, kwargs, training)
    R = _projection(out, rng)
    need = True
    g = layer.backward(ctx, R, need_input_grad=need)

    def loss_now():
        if reset_rng:
            reset_rng()
        o, _ = run(layer, args, kwargs, training)
        return _loss(o, R)

    errors = {}

    def fd(array, idx):
        flat = array.reshape(-1)
        old = flat[idx]
        flat[idx] = old + eps
        lp = loss_now()
        flat[idx] = old - eps
        lm = loss_now()
        flat[idx] = old
        return (lp - lm) / (2 * eps)

    for var, grad in g.weights.items():
        value = var.value
        ids = _entries(value.size, rng, max_entries)
        num = np.array([fd(value, i) for i in ids])
        errors[var.path] = _rel_err(np.asarray(grad).reshape(-1)[ids], num)

    def check_array(name, arr, grad):
        assert grad is not None, f"no gradient for {name}"
        assert np.shape(grad) == arr.shape, f"{name}: gradient shape {np.shape(grad)} != {arr.shape}"
        ids = _entries(arr.size, rng, max_entries)
        num = np.array([fd(arr, i) for i in ids])
        errors[name] = _rel_err(np.asarray(grad).reshape(-1)[ids], num)

    positions = input_args if input_args is not None else (
        [0] if not isinstance(args[0], (list, tuple)) and np.asarray(args[0]).dtype.kind == "f"
        else [])
    for p in positions:
        grad = g.inputs if p == 0 else g.args[p - 1]
        check_array(f"args[{p}]", args[p], grad)
    if isinstance(args[0], list) and input_args is None:
        for k, a in enumerate(args[0]):
            if a is not None and np.asarray(a).dtype.kind == "f":
                check_array(f"inputs[{k}]", a, g.inputs[k])
    for name, k in kwarg_paths:
        arr = kwargs[name] if k is None else kwargs[name][k]
        grad = g.kwargs[name] if k is None else g.kwargs[name][k]
        check_array(f"{name}[{k}]", arr, grad)
    bad = {k: v for k, v in errors.items() if not v <= rtol}
    assert not bad, f"gradient check failed (relative error > {rtol}): {bad}; all: {errors}"
    assert errors, "nothing was checked"
    return errors
