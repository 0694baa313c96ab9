"""NumPy-level functional API: the C kernels as plain functions, and Keras 3's ``keras.ops``.

Two kinds of functions live here:

* the **kernel ops** (:func:`lstm`, :func:`dot_attention`, :func:`additive_attention`,
  :func:`bahdanau_attention`, :func:`multi_head_attention`, :func:`relative_attention`,
  :func:`sampling`, :func:`kl_divergence`, ...): one C call each, with ``*_forward`` /
  ``*_backward`` pairs for the layers' hand-written gradients;
* the **Keras-named ops** (``matmul``, ``einsum``, ``softmax``, ``reshape``, ``sum``, ...), with
  ``keras.ops``' names, arguments, defaults and dtype rules, so a Keras 3 custom layer ports by
  changing its imports. Each works in three modes: on NumPy arrays (plain NumPy, NumPy arrays
  out), on symbolic :class:`~attnlstm.KerasTensor`\\ s (a shape rule, or a
  :class:`~attnlstm.ShapeError` naming the op and every shape), and inside training (reverse-mode
  gradients through a layer's ``call``, by `autograd <https://github.com/HIPS/autograd>`_).

Every function takes array-likes, checks shapes (raising :class:`attnlstm.ShapeError`, a
``ValueError``) and returns NumPy arrays.

Modules: :mod:`._checks` (shared argument checks), :mod:`.lstm`, :mod:`.gru`, :mod:`.attention`, :mod:`.mha`,
:mod:`.vae` (the kernel families), :mod:`.core` (the Keras-named ops and their three modes).
"""
from ._checks import Saved, float_dtype
from ._symbolic import KerasTensor
from .core import *  # noqa: F401,F403  (the keras.ops names)
from .core import __all__ as _core_all
from .lstm import lstm, lstm_backward, lstm_forward
from .gru import gru, gru_backward, gru_forward
from .attention import (
    additive_attention, additive_attention_backward, additive_attention_forward,
    bahdanau_attention, bahdanau_attention_backward, bahdanau_attention_forward, bahdanau_keys,
    dot_attention, dot_attention_backward, dot_attention_forward)
from .mha import (
    multi_head_attention, multi_head_attention_backward, multi_head_attention_forward,
    relative_attention, relative_attention_backward, relative_attention_forward)
from .vae import (
    gaussian_nll, gaussian_nll_backward, kl_divergence, kl_divergence_backward,
    reconstruction_loss, reconstruction_loss_backward, sampling, sampling_backward,
    sampling_forward)

__all__ = [
    "lstm", "lstm_forward", "lstm_backward", "gru", "gru_forward", "gru_backward", "float_dtype",
    "Saved",
    "sampling", "sampling_forward", "sampling_backward", "kl_divergence",
    "kl_divergence_backward", "reconstruction_loss", "reconstruction_loss_backward",
    "gaussian_nll", "gaussian_nll_backward",
    "dot_attention", "dot_attention_forward", "dot_attention_backward", "additive_attention",
    "additive_attention_forward", "additive_attention_backward", "bahdanau_attention",
    "bahdanau_attention_forward", "bahdanau_attention_backward", "bahdanau_keys",
    "multi_head_attention", "multi_head_attention_forward", "multi_head_attention_backward",
    "relative_attention", "relative_attention_forward", "relative_attention_backward",
    "KerasTensor",
] + list(_core_all)
