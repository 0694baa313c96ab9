"""A small, fast version of the ECG acceptance run (the full run is in the demo)."""
import numpy as np

from attnlstm import datasets, optimizers, utils
from attnlstm.demo import ECG_SEED, ecg_vae, ecg_windows, roc_auc


def test_roc_auc_rank_formula():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.5


def test_lstm_vae_ranks_the_labelled_ecg_segment_at_the_top():
    """The demo's configuration (about 25-50 s): window ROC AUC >= 0.9 on the real ECG."""
    signal, labels = datasets.load_ecg_anomaly()
    _, _, train, windows, win_labels = ecg_windows(signal, labels)
    utils.set_random_seed(ECG_SEED)
    vae = ecg_vae()
    steps = 200 * -(-len(train) // 16)
    hist = vae.fit(train, epochs=200, batch_size=16, verbose=0, kl_warmup_epochs=0,
                   optimizer=optimizers.Adam(optimizers.schedules.CosineDecay(0.01, steps, 0.05)))
    rec = hist.history["reconstruction_loss"]
    assert rec[-1] < 0.7 * rec[0]
    scores = vae.anomaly_score(windows)
    auc = roc_auc(win_labels, scores)
    assert auc >= 0.9, auc
    top = np.argsort(scores)[::-1][:5]
    assert win_labels[top].sum() >= 3  # the highest-scored windows fall in the segment


def test_demo_classifier_reaches_095_on_japanese_vowels(tmp_path):
    """The demo's first job, as run by `make demo` (a few seconds)."""
    import matplotlib
    matplotlib.use("Agg")
    from attnlstm import demo
    _, _, res = demo.vowels(str(tmp_path), 40, 0)
    assert res["test_accuracy"] >= 0.95, res
    assert (tmp_path / "vowels_attention.png").exists()
