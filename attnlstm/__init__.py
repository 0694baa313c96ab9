"""attnlstm: LSTM and attention layers as fast C kernels, with Keras-like layers and models.

    >>> import attnlstm
    >>> from attnlstm import layers, Input, Model
"""
from . import _blas  # noqa: F401  (loads OpenBLAS before the extension)
from . import _core
