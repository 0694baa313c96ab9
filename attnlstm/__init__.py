"""attnlstm: LSTM and attention layers as fast C kernels, with Keras-like layers and models.

Every shape mistake is an :class:`attnlstm.ShapeError` (a ``ValueError``) raised when the model is
built, naming the layer, the argument, the expected shape and the shape received::

    >>> import numpy as np, attnlstm
    >>> from attnlstm import layers, Input, Model
    >>> x = Input(shape=(None, 5))
    >>> h = layers.LSTM(32, return_sequences=True)(x)
    >>> y = layers.TimeDistributed(layers.Dense(5))(h)
    >>> Model(x, y).predict(np.random.rand(8, 20, 5), verbose=0).shape
    (8, 20, 5)
"""
from . import _blas  # noqa: F401  (loads OpenBLAS before the extension)
from . import _core
from . import activations, backend, constraints, initializers, regularizers
from . import ops  # before layers: layers import it
from . import losses, metrics, optimizers
from . import layers, utils
from . import callbacks, datasets, models, plot, preprocessing, saving, sequence
from .engine import Input, InputLayer, KerasTensor, Layer, Model, Sequential, Variable
from .engine.base import Grads
from .engine.tape import GradientTape
from .errors import ShapeError
from .vae import LSTMVAE
from ._config import show_config

__version__ = "0.1.0"

__all__ = ["Input", "Model", "Sequential", "ShapeError", "layers", "ops", "utils", "callbacks",
           "datasets", "sequence", "preprocessing", "models",
           "saving", "plot", "losses", "metrics", "optimizers", "regularizers", "constraints",
           "set_num_threads", "get_num_threads", "show_config", "KerasTensor", "Layer", "Variable",
           "InputLayer", "Grads", "LSTMVAE", "GradientTape"]


def set_num_threads(n):
    """Set how many threads attnlstm's kernels use (its BLAS included).

    One budget for everything: the BLAS (OpenBLAS from ``scipy-openblas32``) and attnlstm's own
    thread teams, so the two never oversubscribe the CPU. An LSTM or GRU call splits its batch
    rows (from 8 rows) or its hidden units (smaller batches) over up to ``n`` threads from about
    5e6 flops of recurrent products (``attnlstm._core.SPLIT_FLOPS``); multi-head attention
    splits its per-head score blocks. The LSTM and GRU forward and backward (outputs, states,
    input and weight gradients) give the same bits for every ``n`` (tests/test_isa_paths.py):
    they call no BLAS, and each result element is one sum in a fixed order. The default is
    OpenBLAS's (``OPENBLAS_NUM_THREADS``, else the number of cores).

    Args:
        n: positive int.

    Raises:
        ValueError: n < 1.
    """
    _core.set_num_threads(int(n))


def get_num_threads():
    """How many threads attnlstm's kernels use."""
    return _core.get_num_threads()
