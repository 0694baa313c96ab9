"""attnlstm.plot on the Agg backend: figures, axes, the data drawn, labels, and shape errors."""
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from attnlstm import ShapeError, plot  # noqa: E402


def ticks(labels):
    return [t.get_text() for t in labels]


@pytest.fixture
def w(rng):
    return rng.dirichlet(np.ones(6), size=(3, 4))   # (NH=3, Tq=4, Tv=6)


def test_import_attnlstm_does_not_import_matplotlib():
    import subprocess
    code = ("import sys, attnlstm, attnlstm.plot; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_heatmap_single(w):
    fig = plot.attention_heatmap(w[0], query_labels=["a", "b", "c", "d"], key_labels=range(6),
                                 title="one")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2                      # the map and its colorbar
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), w[0])
    assert ticks(ax.get_yticklabels()) == ["a", "b", "c", "d"]
    assert ticks(ax.get_xticklabels()) == ["0", "1", "2", "3", "4", "5"]
    assert ax.get_title() == "one"
    assert ax.get_ylabel() == "query step"


def test_heatmap_no_colorbar_and_given_ax(w):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    try:
        out = plot.attention_heatmap(w[1], ax=ax, colorbar=False)
        assert out is fig
        assert len(fig.axes) == 1
        np.testing.assert_array_equal(ax.images[0].get_array(), w[1])
    finally:
        plt.close(fig)


def test_heatmap_heads_grid_shares_scale(w):
    fig = plot.attention_heatmap(w, key_labels=list("uvwxyz"))
    assert len(fig.axes) == 3 + 1                  # three heads, one shared colorbar
    for k in range(3):
        ax = fig.axes[k]
        assert ax.get_title() == f"head {k}"
        np.testing.assert_array_equal(ax.images[0].get_array(), w[k])
        assert ax.images[0].get_clim() == (w.min(), w.max())
        assert ticks(ax.get_xticklabels()) == list("uvwxyz")


def test_heatmap_grid_wraps_and_selects_heads(rng):
    w = rng.random((6, 3, 3))
    fig = plot.attention_heatmap(w, colorbar=False)
    assert len(fig.axes) == 6                      # 4 + 2 panels; empty grid cells removed
    fig = plot.attention_heatmap(w, heads=[5, 1], colorbar=False)
    assert [a.get_title() for a in fig.axes] == ["head 5", "head 1"]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), w[5])


def test_heatmap_batched_with_sample(rng):
    w4 = rng.random((2, 3, 4, 5))                  # (B, NH, Tq, Tv) as MultiHeadAttention returns
    fig = plot.attention_heatmap(w4, sample=1, colorbar=False)
    assert len(fig.axes) == 3
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), w4[1, 2])
    w3 = rng.random((2, 4, 5))                     # (B, Tq, Tv) as Attention returns
    fig = plot.attention_heatmap(w3, sample=-1)
    assert len(fig.axes) == 2
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), w3[-1])


def test_heatmap_pooling_vector(rng):
    v = rng.dirichlet(np.ones(7))
    fig = plot.attention_heatmap(v, key_labels=[f"t{k}" for k in range(7)])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), v[None, :])
    assert ax.get_yticks().size == 0
    assert ticks(ax.get_xticklabels())[-1] == "t6"


def test_heatmap_thins_long_labels(rng):
    fig = plot.attention_heatmap(rng.random((3, 200)), key_labels=range(200), colorbar=False)
    shown = ticks(fig.axes[0].get_xticklabels())
    assert shown[:2] == ["0", "5"] and len(shown) == 40


def test_heatmap_shape_errors(rng):
    with pytest.raises(ShapeError, match=r"plot.attention_heatmap: `weights` must have shape .*"
                                         r"got \(2, 3, 4, 5\).\nHint: .*pass sample=b"):
        plot.attention_heatmap(rng.random((2, 3, 4, 5)))
    with pytest.raises(ShapeError, match=r"`weights` must have shape .* got \(2, 2, 2, 2, 2\)"):
        plot.attention_heatmap(rng.random((2, 2, 2, 2, 2)))
    with pytest.raises(ShapeError, match=r"got \(\).\nHint: scalars"):
        plot.attention_heatmap(0.5)
    with pytest.raises(ShapeError, match=r"`query_labels` must have one label per query \(Tq\) "
                                         r"step \(4\), got 3 labels.\nHint: .*pass 4 labels"):
        plot.attention_heatmap(rng.random((4, 5)), query_labels=["a", "b", "c"])
    with pytest.raises(ShapeError, match=r"`key_labels` must have one label per key/value \(Tv\) "
                                         r"step \(5\), got 6"):
        plot.attention_heatmap(rng.random((4, 5)), key_labels=range(6))
    with pytest.raises(ShapeError, match=r"with sample=, weights need a batch axis"):
        plot.attention_heatmap(rng.random(5), sample=0)
    with pytest.raises(ShapeError, match=r"`heads` needs multi-head weights"):
        plot.attention_heatmap(rng.random((4, 5)), heads=[0])
    with pytest.raises(IndexError, match=r"`sample` must be an int in \[-2, 2\)"):
        plot.attention_heatmap(rng.random((2, 4, 5)), sample=2)
    with pytest.raises(IndexError, match=r"head 3 out of range for 3 heads"):
        plot.attention_heatmap(rng.random((3, 4, 5)), heads=[3])
    err = pytest.raises(ShapeError, plot.attention_heatmap, rng.random((4, 5)), key_labels="ab")
    assert err.value.argument == "key_labels" and err.value.got == (2,)
    assert isinstance(err.value, ValueError)


class FakeHistory:
    def __init__(self, history):
        self.history = history
        self.epoch = list(range(len(next(iter(history.values())))))


def test_training_curves_history_object():
    h = FakeHistory({"loss": [1.0, 0.5, 0.25], "accuracy": [0.2, 0.6, 0.8],
                     "val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.1, 0.5, 0.7]})
    fig = plot.training_curves(h)
    assert isinstance(fig, Figure)
    assert [a.get_title() for a in fig.axes] == ["loss", "accuracy"]
    loss_ax = fig.axes[0]
    train, val = loss_ax.get_lines()
    assert train.get_label() == "loss" and val.get_label() == "val_loss"
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(val.get_ydata(), [1.1, 0.7, 0.6])
    assert loss_ax.get_xlabel() == "epoch"


def test_training_curves_dict_metrics_and_val_only():
    h = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "val_auc": [0.6, 0.7]}
    fig = plot.training_curves(h)
    assert [a.get_title() for a in fig.axes] == ["loss", "val_auc"]
    assert len(fig.axes[1].get_lines()) == 1
    fig = plot.training_curves(h, metrics="loss")
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match=r"no metric 'acc' in the history; it has \['loss', 'val_auc', 'val_loss'\]"):
        plot.training_curves(h, metrics=["acc"])
    with pytest.raises(ValueError, match="history is empty"):
        plot.training_curves({})
    with pytest.raises(TypeError, match="must be a History"):
        plot.training_curves([1, 2, 3])


def test_reconstruction_masked(rng):
    x = rng.random((2, 12, 3))
    x_hat = x + 0.1
    mask = np.ones((2, 12), bool)
    mask[1, 8:] = False
    fig = plot.reconstruction(x, x_hat, mask=mask, sample=1, feature_names=["a", "b", "c"])
    assert len(fig.axes) == 3
    ax = fig.axes[2]
    inp, rec = ax.get_lines()
    assert (inp.get_label(), rec.get_label()) == ("input", "reconstruction")
    np.testing.assert_array_equal(inp.get_ydata()[:8], x[1, :8, 2])
    np.testing.assert_array_equal(rec.get_ydata()[:8], x_hat[1, :8, 2])
    assert np.isnan(inp.get_ydata()[8:]).all() and np.isnan(rec.get_ydata()[8:]).all()
    assert ax.get_title() == "c  (MSE 0.01)"
    assert ax.get_xlim() == (-0.5, 11.5)


def test_reconstruction_single_sequence_and_features(rng):
    x = rng.random((10, 4))
    fig = plot.reconstruction(x, x * 0.9, features=[3, 0])
    assert [a.get_title().split("  ")[0] for a in fig.axes] == ["feature 3", "feature 0"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), x[:, 3])
    fig = plot.reconstruction(x[:, 0], x[:, 0])
    assert len(fig.axes) == 1


def test_reconstruction_shape_errors(rng):
    x = rng.random((4, 20, 3))
    with pytest.raises(ShapeError, match=r"plot.reconstruction: `x_hat` must have shape \(4, 20, 3\) "
                                         r"\(the shape of `x`\), got \(4, 15, 3\).\nHint: .*"
                                         r"RepeatVector\(n\) must repeat n = timesteps"):
        plot.reconstruction(x, x[:, :15])
    with pytest.raises(ShapeError, match=r"got \(4, 3\).\nHint: .*return_sequences=True"):
        plot.reconstruction(x, x[:, 0])
    with pytest.raises(ShapeError, match=r"`mask` must have shape \(4, 20\) .*got \(4, 20, 3\)"
                                         r".\nHint: a mask has no feature axis"):
        plot.reconstruction(x, x, mask=np.ones((4, 20, 3), bool))
    with pytest.raises(ShapeError, match=r"`x` must have shape .*got \(1, 4, 20, 3\)"):
        plot.reconstruction(x[None], x[None])
    with pytest.raises(ShapeError, match=r"`feature_names` must have one label per feature \(F\) step \(3\)"):
        plot.reconstruction(x[0], x[0], feature_names=["a"])
    with pytest.raises(IndexError, match="feature 5 out of range for 3 features"):
        plot.reconstruction(x[0], x[0], features=[5])


def test_anomaly_scores_windows(rng):
    T, window, stride = 300, 40, 20
    signal = np.sin(np.arange(T) / 7.0)
    labels = np.zeros(T, int)
    labels[100:130] = 1
    labels[250:260] = 1
    W = (T - window) // stride + 1
    scores = rng.random(W)
    fig = plot.anomaly_scores(signal, scores, labels=labels, window=window, stride=stride,
                              threshold=0.5, title="ECG")
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    np.testing.assert_array_equal(top.get_lines()[0].get_ydata(), signal)
    line = bottom.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), scores)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(W) * stride + (window - 1) / 2)
    spans = [p for p in top.patches]
    assert len(spans) == 2                              # one shaded run per anomalous segment
    xs = sorted(p.get_x() for p in spans)
    assert xs == [99.5, 249.5]
    assert len(bottom.patches) == 2
    above = bottom.get_lines()[-1]
    np.testing.assert_array_equal(above.get_ydata(), scores[scores > 0.5])
    assert any(l.get_label() == "threshold 0.5" for l in bottom.get_lines())
    assert fig._suptitle.get_text() == "ECG"


def test_anomaly_scores_per_step_and_multichannel(rng):
    s = rng.random((50, 2))
    fig = plot.anomaly_scores(s, rng.random(50))
    assert len(fig.axes) == 2
    assert len(fig.axes[0].get_lines()) == 2
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_xdata(), np.arange(50))


def test_anomaly_scores_shape_errors(rng):
    s = rng.random(100)
    with pytest.raises(ShapeError, match=r"`scores` must have one score per window: windows of 20 "
                                         r"steps with stride 10 over 100 steps give 9, got \(10,\)"):
        plot.anomaly_scores(s, rng.random(10), window=20, stride=10)
    with pytest.raises(ShapeError, match=r"one score per time step \(100\) when `window` is None, "
                                         r"got \(9,\).\nHint: .*pass window= and stride="):
        plot.anomaly_scores(s, rng.random(9))
    with pytest.raises(ShapeError, match=r"`labels` must have shape \(100,\), got \(99,\)"):
        plot.anomaly_scores(s, rng.random(100), labels=np.zeros(99))
    with pytest.raises(ShapeError, match=r"`signal` must have shape \(T,\) or \(T, F\), got "
                                         r"\(2, 100, 1\).\nHint: .*signal\[b\]"):
        plot.anomaly_scores(s.reshape(2, 50, 1).repeat(2, 1), rng.random(100))
    with pytest.raises(ShapeError, match=r"`scores` must have shape \(W,\), got \(9, 20\)"):
        plot.anomaly_scores(s, rng.random((9, 20)), window=20, stride=10)
    with pytest.raises(ValueError, match=r"`window` must be in 1..T \(100\). Received: window=101"):
        plot.anomaly_scores(s, rng.random(1), window=101)
    with pytest.raises(ValueError, match="Received: stride=0"):
        plot.anomaly_scores(s, rng.random(1), window=10, stride=0)


def test_figures_are_not_left_open_in_pyplot(rng):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    plot.attention_heatmap(rng.random((2, 3, 3)))
    plot.training_curves({"loss": [1, 0]})
    plot.reconstruction(rng.random((5, 2)), rng.random((5, 2)))
    plot.anomaly_scores(rng.random(20), rng.random(20))
    assert plt.get_fignums() == before


def test_heatmap_step_numbers_are_whole(rng):
    fig = plot.attention_heatmap(rng.random((1, 20)), colorbar=False)   # one query step
    ax = fig.axes[0]
    ax.figure.canvas.draw()
    ys = [y for y in ax.get_yticks() if -0.5 <= y <= 0.5]
    assert ys == [0.0]
    assert all(float(x).is_integer() for x in ax.get_xticks())
