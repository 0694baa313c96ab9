"""Optimizers and learning-rate schedules vs Keras 3 (TensorFlow backend), step by step."""
import warnings

import numpy as np
import pytest

import attnlstm
from attnlstm import optimizers
from attnlstm.optimizers import schedules

RTOL, ATOL = 1e-6, 1e-7

SHAPES = [(3, 4), (4,), (2, 3, 2)]
NAMES = ["dense/kernel", "dense/bias", "lstm/recurrent_kernel"]


def _make_vars(rng, dtype="float32"):
    vals = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    ours = [attnlstm.Variable(np.array(v, order="C"), n.split("/")[-1], path=n)
            for v, n in zip(vals, NAMES)]
    return vals, ours


def _grads(rng, steps=3, dtype="float32", scale=1.0):
    return [[(scale * rng.normal(size=s)).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _keras_vars(keras, vals):
    return [keras.Variable(v, name=n.split("/")[-1], dtype=v.dtype.name)
            for v, n in zip(vals, NAMES)]


def _lr(kwargs):
    lr = kwargs.get("learning_rate")
    if isinstance(lr, tuple):          # ("ExponentialDecay", {...}): a schedule, built per side
        return lr
    return None


def _build(module, cls_name, kwargs):
    kwargs = dict(kwargs)
    sched = _lr(kwargs)
    if sched is not None:
        kwargs["learning_rate"] = getattr(module.schedules, sched[0])(**sched[1])
    return getattr(module, cls_name)(**kwargs)


CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.1, "clipvalue": 0.5}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("Adam", {"learning_rate": 0.01, "clipnorm": 1.0}),
    ("Adam", {"learning_rate": 0.01, "global_clipnorm": 1.5}),
    ("Adam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4,
              "weight_decay": 0.1}),
    ("Adam", {"learning_rate": ("ExponentialDecay",
                                {"initial_learning_rate": 0.01, "decay_steps": 1,
                                 "decay_rate": 0.5})}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.05, "amsgrad": True}),
    ("AdamW", {"learning_rate": ("CosineDecay",
                                 {"initial_learning_rate": 0.01, "decay_steps": 3,
                                  "warmup_target": 0.02, "warmup_steps": 1})}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "rho": 0.8,
                 "clipnorm": 0.7}),
]


@pytest.mark.parametrize("cls_name,kwargs", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_matches_keras_each_step(keras, rng, cls_name, kwargs):
    vals, ours = _make_vars(rng)
    theirs = _keras_vars(keras, vals)
    grads = _grads(rng, scale=2.0)
    opt = _build(optimizers, cls_name, kwargs)
    kopt = _build(keras.optimizers, cls_name, kwargs)
    for step, g in enumerate(grads):
        refs = [v.value for v in ours]
        opt.apply(g, ours)
        kopt.apply(g, theirs)
        for v, r in zip(ours, refs):
            assert v.value is r, "updates must be in place"
            assert v.value.dtype == np.float32
        for k, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a.value, b.numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"step {step} variable {k}")
        assert opt.iterations == int(kopt.iterations.numpy()) == step + 1
        np.testing.assert_allclose(opt.learning_rate, float(np.asarray(kopt.learning_rate)),
                                   rtol=1e-7)


@pytest.mark.parametrize("cls_name,kwargs", [
    ("Adam", {"learning_rate": 0.01, "weight_decay": 0.01}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("RMSprop", {"centered": True, "momentum": 0.3, "clipnorm": 1.0})])
def test_float64_variables_match_keras(keras, rng, cls_name, kwargs):
    """Keras casts Python-float hyperparameters through float32 (tf.cast); so do we."""
    vals, ours = _make_vars(rng, "float64")
    theirs = _keras_vars(keras, vals)
    opt = getattr(optimizers, cls_name)(**kwargs)
    kopt = getattr(keras.optimizers, cls_name)(**kwargs)
    for g in _grads(rng, dtype="float64"):
        opt.apply(g, ours)
        kopt.apply(g, theirs)
    for a, b in zip(ours, theirs):
        assert a.value.dtype == np.float64
        np.testing.assert_allclose(a.value, b.numpy(), rtol=1e-12, atol=1e-14)


def test_none_gradient_skips_variable_and_warns(keras, rng):
    vals, ours = _make_vars(rng)
    theirs = _keras_vars(keras, vals)
    opt, kopt = optimizers.SGD(0.1, momentum=0.5), keras.optimizers.SGD(0.1, momentum=0.5)
    g = _grads(rng, steps=1)[0]
    g[1] = None
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply(g, ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kopt.apply(g, theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.value, b.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(ours[1].value, vals[1])
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.apply([None, None, None], ours)


def test_exclude_from_weight_decay_matches_keras(keras, rng):
    vals, ours = _make_vars(rng)
    theirs = _keras_vars(keras, vals)
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    kopt = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[ours[0]], var_names=["bias"])
    kopt.exclude_from_weight_decay(var_list=[theirs[0]], var_names=["bias"])
    for g in _grads(rng):
        opt.apply(g, ours)
        kopt.apply(g, theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.value, b.numpy(), rtol=RTOL, atol=ATOL)
    # Zero gradients: only weight decay moves the non-excluded variable.
    opt2 = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt2.exclude_from_weight_decay(var_names=["bias"])
    before = [v.numpy() for v in ours]
    opt2.apply([np.zeros(s, np.float32) for s in SHAPES], ours)
    np.testing.assert_array_equal(ours[1].value, before[1])
    np.testing.assert_allclose(ours[0].value, before[0] * np.float32(1 - 0.05), rtol=1e-6)


def test_apply_gradients_and_variables(rng):
    _, ours = _make_vars(rng)
    opt = optimizers.get("ADAM")
    g = _grads(rng, steps=1)[0]
    assert opt.apply_gradients(zip(g, ours)) == 1
    state = opt.variables
    assert int(state[0]) == 1 and float(state[1]) == pytest.approx(0.001)
    assert len(state) == 2 + 2 * len(SHAPES)
    assert [s.shape for s in state[2:]] == [s for s in SHAPES for _ in range(2)]


def test_learning_rate_property():
    opt = optimizers.SGD(learning_rate=0.1)
    assert opt.learning_rate == pytest.approx(0.1)
    assert opt.learning_rate == float(np.float32(0.1))
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    sched = optimizers.Adam(learning_rate=schedules.ExponentialDecay(0.1, 1, 0.5))
    assert sched.learning_rate == pytest.approx(0.1)
    sched.iterations = 2
    assert sched.learning_rate == pytest.approx(0.025)
    with pytest.raises(TypeError, match="not settable"):
        sched.learning_rate = 0.01
    with pytest.raises(ValueError, match="should be float"):
        optimizers.SGD(learning_rate="fast")


def test_argument_errors():
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and "
                                         "`global_clipnorm` can be set"):
        optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="`momentum` must be a float between"):
        optimizers.SGD(momentum=2.0)
    with pytest.raises(ValueError, match="weight_decay=None"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(NotImplementedError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(beta1=0.9)


def test_get_and_config_roundtrip():
    for name, cls in [("sgd", optimizers.SGD), ("Adam", optimizers.Adam),
                      ("adamw", optimizers.AdamW), ("RMSprop", optimizers.RMSprop)]:
        assert type(optimizers.get(name)) is cls
    opt = optimizers.RMSprop(learning_rate=0.02, centered=True, clipvalue=1.0)
    assert optimizers.get(opt) is opt
    clone = optimizers.get({"class_name": "RMSprop", "config": opt.get_config()})
    assert clone.get_config() == opt.get_config()
    sopt = optimizers.Adam(learning_rate=schedules.CosineDecay(0.1, 10, alpha=0.1))
    clone = optimizers.Adam.from_config(sopt.get_config())
    assert isinstance(clone._learning_rate, schedules.CosineDecay)
    assert clone.get_config() == sopt.get_config()
    with pytest.raises(ValueError, match=r"Known optimizers: \['adam', 'adamw', 'rmsprop', "
                                         r"'sgd'\]"):
        optimizers.get("adagrad")


def test_config_keys_match_keras(keras):
    for cls in ["SGD", "Adam", "AdamW", "RMSprop"]:
        ours = getattr(optimizers, cls)().get_config()
        theirs = getattr(keras.optimizers, cls)().get_config()
        assert set(ours) == set(theirs), cls
        for k in ours:
            if k != "name":
                assert ours[k] == pytest.approx(theirs[k]) if isinstance(ours[k], float) \
                    else ours[k] == theirs[k], (cls, k)


SCHEDULES = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.9}),
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.9,
                          "staircase": True}),
    ("PiecewiseConstantDecay", {"boundaries": [5, 20], "values": [0.1, 0.05, 0.01]}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 30}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 30, "power": 2.0,
                         "end_learning_rate": 0.01, "cycle": True}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5,
                          "staircase": True}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "alpha": 0.1}),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 40, "warmup_target": 0.1,
                     "warmup_steps": 10}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 10}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 10,
                             "t_mul": 1.0, "m_mul": 0.5, "alpha": 0.05}),
]


@pytest.mark.parametrize("cls_name,kwargs", SCHEDULES, ids=[c for c, _ in SCHEDULES])
def test_schedules_match_keras(keras, cls_name, kwargs):
    ours = getattr(schedules, cls_name)(**kwargs)
    theirs = getattr(keras.optimizers.schedules, cls_name)(**kwargs)
    for step in [0, 1, 4, 5, 6, 9, 10, 11, 20, 29, 31, 45, 70, 100]:
        np.testing.assert_allclose(ours(step), float(np.asarray(theirs(step))), rtol=1e-6,
                                   atol=1e-9, err_msg=f"step {step}")
    assert ours.get_config() == theirs.get_config()
    assert schedules.deserialize(schedules.serialize(ours)).get_config() == ours.get_config()


def test_schedule_errors_and_subclass():
    with pytest.raises(ValueError, match="decay_steps` must be > 0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="1 less than the length of values"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])

    class Halving(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 * 0.5 ** step

    opt = optimizers.SGD(learning_rate=Halving())
    w = attnlstm.Variable(np.zeros(2, np.float32), "w")
    for _ in range(3):
        opt.apply([np.ones(2, np.float32)], [w])
    np.testing.assert_allclose(w.value, -(0.1 + 0.05 + 0.025), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        schedules.LearningRateSchedule()(0)
