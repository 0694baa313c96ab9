"""Keras-like layers on attnlstm's C kernels (names, arguments and weights as Keras 3)."""
from ..engine.base import Grads, InputLayer, Layer
from .attention import (AdditiveAttention, Attention, AttentionPooling, BahdanauAttention,
                        LuongAttention, MultiHeadAttention, RelativeMultiHeadAttention)
from .core import Activation, Dense, Dropout, Embedding, Lambda, Masking, Softmax
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from .reshaping import Flatten, Permute, RepeatVector, Reshape
from .rnn import GRU, LSTM, RNN, SimpleRNN
from .vae import KLDivergence, Sampling
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "InputLayer", "Grads", "RNN", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "Dense", "TimeDistributed", "RepeatVector", "Flatten",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Reshape", "Permute", "Concatenate", "Add",
    "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot", "Activation", "Softmax",
    "Masking", "Dropout", "Embedding", "Lambda", "Attention", "AdditiveAttention",
    "MultiHeadAttention", "BahdanauAttention", "LuongAttention", "AttentionPooling",
    "RelativeMultiHeadAttention", "Sampling", "KLDivergence",
]
