"""Callbacks driven by scripted logs on a fake model, with the same logs fed to Keras 3's own
callbacks on a tiny Keras model: the decisions (stopped epoch, learning rates, restored weights,
files written, CSV text, console output) must agree."""
import os
import re

import numpy as np
import pytest

from attnlstm import Input, Model, callbacks as C, layers, saving


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr


class FakeModel:
    """The parts of a model callbacks use."""

    def __init__(self, lr=0.1, real=None):
        self.name = "fake"
        self.stop_training = False
        self.optimizer = FakeOptimizer(lr)
        self._weights = [np.zeros((2, 2), "float32"), np.zeros((2,), "float32")]
        self.real = real
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self._weights]

    def set_weights(self, weights):
        self._weights = [np.array(w) for w in weights]

    def save_weights(self, path, overwrite=True):
        self.saved.append(path)
        saving.save_weights(self.real, path, overwrite=overwrite)


@pytest.fixture
def keras_model(keras):
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    return m


def _weights_for(epoch, shapes):
    return [np.full(s, float(epoch), "float32") for s in shapes]


def drive(cb, model, seq, set_epoch_weights=False):
    """fit's epoch loop: returns [(epoch, lr after the epoch)], stops on stop_training."""
    model.stop_training = False
    cb.set_model(model)
    cb.on_train_begin()
    trace = []
    shapes = [w.shape for w in model.get_weights()]
    for epoch, logs in enumerate(seq):
        if set_epoch_weights:
            model.set_weights(_weights_for(epoch, shapes))
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, dict(logs))
        lr = float(np.asarray(model.optimizer.learning_rate)) if getattr(model, "optimizer", None) \
            is not None else None
        trace.append((epoch, lr))
        if model.stop_training:
            break
    cb.on_train_end()
    return trace


VAL_LOSS = [1.0, 0.9, 0.95, 0.92, 0.91, 0.5, 0.6, 0.6, 0.6, 0.7, 0.4, 0.45]
SEQ = [{"loss": 1.0 - 0.01 * i, "val_loss": v, "val_accuracy": 1 - v} for i, v in enumerate(VAL_LOSS)]

EARLY = [
    dict(patience=0),
    dict(patience=2),
    dict(patience=2, min_delta=0.05),
    dict(patience=1, monitor="val_accuracy", mode="max"),
    dict(patience=3, baseline=0.55),
    dict(patience=1, start_from_epoch=4),
    dict(patience=2, restore_best_weights=True),
    dict(patience=20, restore_best_weights=True),  # never stops: restores at the end anyway
    dict(patience=2, restore_best_weights=True, baseline=0.1),
]


@pytest.mark.parametrize("kwargs", EARLY, ids=[str(k) for k in EARLY])
def test_early_stopping_matches_keras(keras, keras_model, kwargs):
    ours_cb, theirs_cb = C.EarlyStopping(**kwargs), keras.callbacks.EarlyStopping(**kwargs)
    fake = FakeModel()
    fake._weights = [np.zeros((2, 2), "float32"), np.zeros((2,), "float32")]
    t_ours = drive(ours_cb, fake, SEQ, set_epoch_weights=True)
    t_theirs = drive(theirs_cb, keras_model, SEQ, set_epoch_weights=True)
    assert [e for e, _ in t_ours] == [e for e, _ in t_theirs]
    assert ours_cb.stopped_epoch == theirs_cb.stopped_epoch
    assert ours_cb.best == pytest.approx(theirs_cb.best)
    assert ours_cb.wait == theirs_cb.wait
    for a, b in zip(fake.get_weights(), keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_auto_mode_and_missing_key(capsys):
    cb = C.EarlyStopping(monitor="val_accuracy", patience=0, verbose=1)
    m = FakeModel()
    drive(cb, m, [{"val_accuracy": 0.5}, {"val_accuracy": 0.6}, {"val_accuracy": 0.55}])
    assert cb.stopped_epoch == 2  # accuracy is maximised in "auto" mode
    assert "Epoch 3: early stopping" in capsys.readouterr().out
    cb = C.EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match=r"Early stopping conditioned on metric `val_loss` which "
                                         r"is not available\. Available metrics are: loss,mae"):
        drive(cb, FakeModel(), [{"loss": 1.0, "mae": 0.5}])
    cb = C.EarlyStopping(monitor="my_score")
    with pytest.raises(ValueError, match=r"monitor=my_score.*Pass `mode='max'`"):
        drive(cb, FakeModel(), [{"my_score": 1.0}])
    with pytest.warns(UserWarning, match="mode 'up' is unknown"):
        C.EarlyStopping(mode="up")


REDUCE = [
    dict(patience=1),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=2, factor=0.5, min_lr=0.02),
    dict(patience=0, factor=0.2, min_delta=0.05),
    dict(patience=1, monitor="val_accuracy", mode="max", cooldown=1, factor=0.3),
]


@pytest.mark.parametrize("kwargs", REDUCE, ids=[str(k) for k in REDUCE])
def test_reduce_lr_matches_keras(keras, keras_model, kwargs):
    ours_cb, theirs_cb = C.ReduceLROnPlateau(**kwargs), keras.callbacks.ReduceLROnPlateau(**kwargs)
    t_ours = drive(ours_cb, FakeModel(lr=0.1), SEQ)
    keras_model.optimizer.learning_rate = 0.1
    t_theirs = drive(theirs_cb, keras_model, SEQ)
    lr_ours = [lr for _, lr in t_ours]
    lr_theirs = [lr for _, lr in t_theirs]
    np.testing.assert_allclose(lr_ours, lr_theirs, rtol=1e-6)  # Keras keeps lr in float32
    assert len(set(np.round(lr_ours, 8))) > 1  # the scenario does reduce
    assert (ours_cb.wait, ours_cb.cooldown_counter) == (theirs_cb.wait, theirs_cb.cooldown_counter)


def test_reduce_lr_logs_learning_rate_into_history(capsys):
    m = FakeModel(lr=1.0)
    cl = C.CallbackList([C.ReduceLROnPlateau(patience=0, factor=0.5, verbose=1)],
                        add_history=True, model=m, verbose=0, epochs=3, steps=1)
    cl.on_train_begin()
    for e, v in enumerate([1.0, 1.0, 1.0]):
        cl.on_epoch_end(e, {"val_loss": np.float32(v)})
    cl.on_train_end()
    # The logged rate is the one used in the epoch (read before the reduction); epoch 0 is the
    # first value (an improvement over None), so the first reduction happens at epoch 1.
    assert m.history.history["learning_rate"] == [1.0, 1.0, 0.5]
    assert m.optimizer.learning_rate == 0.25
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out
    with pytest.raises(ValueError, match="factor >= 1.0"):
        C.ReduceLROnPlateau(factor=1.0)


def _tiny_attnlstm():
    i = Input((2,))
    return Model(i, layers.Dense(2)(i))


@pytest.mark.parametrize("best_only", [False, True])
def test_model_checkpoint_files_match_keras(keras, keras_model, tmp_path, best_only):
    pattern = "{epoch:02d}-{val_loss:.2f}.weights.h5"
    ours_dir, keras_dir = tmp_path / "ours", tmp_path / "keras"
    ours_cb = C.ModelCheckpoint(str(ours_dir / pattern), save_best_only=best_only,
                                save_weights_only=True)
    theirs_cb = keras.callbacks.ModelCheckpoint(str(keras_dir / pattern), save_best_only=best_only,
                                                save_weights_only=True)
    drive(ours_cb, FakeModel(real=_tiny_attnlstm()), SEQ[:8])
    drive(theirs_cb, keras_model, SEQ[:8])
    assert sorted(os.listdir(ours_dir)) == sorted(os.listdir(keras_dir))
    assert len(os.listdir(ours_dir)) == (3 if best_only else 8)
    # Our checkpoint loads into Keras.
    keras_model.load_weights(str(ours_dir / sorted(os.listdir(ours_dir))[0]))


def test_model_checkpoint_rules(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        C.ModelCheckpoint(str(tmp_path / "w.h5"), save_weights_only=True)
    with pytest.raises(ValueError, match=r"must end in `\.keras`"):
        C.ModelCheckpoint(str(tmp_path / "w.ckpt"))
    with pytest.raises(ValueError, match="Unrecognized save_freq"):
        C.ModelCheckpoint(str(tmp_path / "w.keras"), save_freq="batch")
    cb = C.ModelCheckpoint(str(tmp_path / "m.keras"))
    with pytest.raises(ValueError, match=r"has no `save` method.*save_weights_only=True"):
        cb.set_model(FakeModel(real=_tiny_attnlstm()))
    # A model with save gets save(path, overwrite=True).
    calls = []
    m = FakeModel()
    m.save = lambda path, overwrite=True: calls.append((path, overwrite))
    cb = C.ModelCheckpoint(str(tmp_path / "m{epoch}.keras"), monitor="val_loss", verbose=1,
                           save_best_only=True, initial_value_threshold=0.95)
    drive(cb, m, SEQ[:3])
    assert calls == [(str(tmp_path / "m2.keras"), True)]
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss did not improve from 0.95000" in out
    assert "Epoch 2: val_loss improved from 0.95000 to 0.90000, saving model to" in out
    # save_freq in batches, with {batch}.
    m = FakeModel(real=_tiny_attnlstm())
    cb = C.ModelCheckpoint(str(tmp_path / "b" / "e{epoch}b{batch}.weights.h5"),
                           save_weights_only=True, save_freq=3)
    cb.set_model(m)
    cb.on_train_begin()
    for e in range(2):
        cb.on_epoch_begin(e)
        for b in range(4):
            cb.on_train_batch_end(b, {"loss": 1.0})
        cb.on_epoch_end(e, {"loss": 1.0})
    assert [os.path.basename(p) for p in m.saved] == ["e1b3.weights.h5", "e2b2.weights.h5"]
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        C.ModelCheckpoint(str(tmp_path / "{acc}.weights.h5"), save_weights_only=True)._get_file_path(
            0, None, {"loss": 1.0})


def test_csv_logger_matches_keras(keras, keras_model, tmp_path):
    seq = [{"loss": np.float32(0.5) / (i + 1), "accuracy": 0.25 * i} for i in range(3)]
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    drive(C.CSVLogger(str(ours)), FakeModel(), seq)
    drive(keras.callbacks.CSVLogger(str(theirs)), keras_model, seq)
    assert ours.read_text() == theirs.read_text()
    assert ours.read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    # append: no second header; separator.
    drive(C.CSVLogger(str(ours), append=True), FakeModel(), seq)
    drive(keras.callbacks.CSVLogger(str(theirs), append=True), keras_model, seq)
    assert ours.read_text() == theirs.read_text()
    drive(C.CSVLogger(str(ours), separator=";"), FakeModel(), seq)
    assert ours.read_text().splitlines()[0] == "epoch;accuracy;loss;val_accuracy;val_loss"


def test_terminate_on_nan_and_lambda(capsys):
    m = FakeModel()
    events = []
    cl = C.CallbackList([C.TerminateOnNaN(),
                         C.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                                          on_epoch_end=lambda e, logs: events.append(("end", e)),
                                          on_train_batch_end=lambda b, logs: events.append(b),
                                          on_test_end=lambda logs: events.append("test"))],
                        model=m)
    cl.on_train_begin()
    cl.on_train_batch_end(0, {"loss": 1.0})
    assert not m.stop_training
    cl.on_train_batch_end(1, {"loss": float("nan")})
    assert m.stop_training
    cl.on_epoch_end(0, {})
    cl.on_test_end()
    assert events == ["begin", 0, 1, ("end", 0), "test"]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 3"):
        C.TerminateOnNaN(raise_error=True).on_train_batch_end(3, {"loss": float("inf")})


def test_callback_list_history_and_params():
    m = FakeModel()
    seen = {}

    class Spy(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = list(logs.items())

    spy = Spy()
    cl = C.CallbackList([[spy]], add_history=True, add_progbar=True, model=m, verbose=0,
                        epochs=2, steps=3)
    assert [type(c).__name__ for c in cl.callbacks] == ["Spy", "History", "ProgbarLogger"]
    assert spy.model is m and spy.params == {"verbose": 0, "epochs": 2, "steps": 3}
    cl.on_train_begin()
    cl.on_epoch_end(0, {"val_loss": np.float32(0.5), "loss": np.float64(0.25)})
    cl.on_epoch_end(1, {"val_loss": 0.4, "loss": 0.2})
    cl.on_train_end()
    assert seen[0] == [("loss", 0.25), ("val_loss", 0.5)]  # sorted, Python floats
    assert type(seen[0][1][1]) is float
    assert m.history.history == {"loss": [0.25, 0.2], "val_loss": [0.5, 0.4]}
    assert m.history.epoch == [0, 1]
    assert m.history.params["epochs"] == 2
    with pytest.raises(TypeError, match="must be Callback instances"):
        C.CallbackList([lambda: None])


# ---------------------------------------------------------------------------------------------
# Console output

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _normalise(text):
    """Drop colour codes and timings (which differ run to run)."""
    text = _ANSI.sub("", text).replace("\b", "")
    text = re.sub(r" +(?=[\r\n]|$)", "", text)
    text = re.sub(r"\d+(ms|us|s)/step", "T/step", text)
    text = re.sub(r" \d+s( |$)", r" Ts\1", text, flags=re.M)
    return text


def _script(cb_list):
    cb_list.on_train_begin()
    for e in range(2):
        cb_list.on_epoch_begin(e)
        for b in range(3):
            cb_list.on_train_batch_begin(b)
            cb_list.on_train_batch_end(b, {"loss": 0.5 - 0.1 * b, "accuracy": 0.5 + 0.1 * b})
        cb_list.on_test_begin()
        cb_list.on_test_batch_end(0, {"loss": 9.0})
        cb_list.on_test_end({"loss": 9.0})
        cb_list.on_epoch_end(e, {"loss": 0.4, "accuracy": 0.6, "val_loss": 0.3 + e,
                                 "val_accuracy": 0.00001})
    cb_list.on_train_end()


@pytest.mark.parametrize("verbose", [0, 1, 2, "auto"])
def test_progbar_logger_matches_keras(keras, keras_model, capsys, verbose):
    from keras.src.callbacks.callback_list import CallbackList as KerasCallbackList
    _script(C.CallbackList(model=FakeModel(), add_progbar=True, verbose=verbose, epochs=2, steps=3))
    ours = capsys.readouterr().out
    _script(KerasCallbackList(model=keras_model, add_progbar=True, verbose=verbose, epochs=2,
                              steps=3))
    theirs = capsys.readouterr().out
    assert _normalise(ours) == _normalise(theirs)
    if verbose == 0:
        assert ours == ""
    elif verbose == 2:
        assert re.fullmatch(r"Epoch 1/2\n3/3 - \d+s - \d+(us|ms|s)/step - accuracy: 0\.6000 - "
                            r"loss: 0\.4000 - val_accuracy: 1\.0000e-05 - val_loss: 0\.3000\n"
                            r"Epoch 2/2\n3/3 - .* - val_loss: 1\.3000\n", ours)
    else:
        last = _ANSI.sub("", ours.split("\r")[-1])
        assert re.fullmatch(r"3/3 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.6000 - loss: "
                            r"0\.4000 - val_accuracy: 1\.0000e-05 - val_loss: 1\.3000 *\n", last)
        assert "\x1b[32m" in ours  # Keras' colours


def test_progbar_standalone(capsys):
    bar = C.Progbar(10, verbose=1, interval=0.0)
    bar.update(5, [("loss", 1.0)])
    bar.update(10, [("loss", 3.0)])
    out = _ANSI.sub("", capsys.readouterr().out).replace("\b", "")
    assert " 5/10 ━━━━━━━━━━━━━━━━━━━━ " in out.split("\r")[1]
    # Stateless values are averaged over steps until finalize, which shows the last value.
    assert out.split("\r")[1].rstrip().endswith("loss: 1.0000")
    assert out.split("\r")[-1].rstrip().endswith("loss: 3.0000")
    bar = C.Progbar(None, verbose=1, interval=0.0, stateful_metrics=["acc"])
    bar.update(2, [("acc", 0.0001)])
    assert "      2/Unknown" in capsys.readouterr().out
    assert C._format_value(-0.5, signed=True) == "-0.5000"
    assert C._format_value(-0.5, signed=False) == "-5.0000e-01"  # Keras' verbose=2 quirk
    with pytest.raises(ValueError, match="not both"):
        C.Progbar(3, stateful_metrics=[], stateless_metrics=[])
