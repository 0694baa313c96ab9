"""Keras-like layers on attnlstm's C kernels (names, arguments and weights as Keras 3)."""
from ..engine.base import Grads, Input, InputLayer, Layer
from .attention import (AdditiveAttention, Attention, AttentionPooling, BahdanauAttention,
                        LuongAttention, MultiHeadAttention, RelativeMultiHeadAttention)
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU
from .convolutional import Conv1D, Conv1DTranspose
from .core import Activation, Dense, Dropout, Embedding, Lambda, Masking, Softmax
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, AvgPool1D, GlobalAveragePooling1D, GlobalMaxPooling1D,
                      MaxPool1D, MaxPooling1D)
from .regularization import SpatialDropout1D
from .reshaping import (Cropping1D, Flatten, Permute, RepeatVector, Reshape, UpSampling1D,
                        ZeroPadding1D)
from .rnn import GRU, LSTM, RNN, SimpleRNN
from .vae import KLDivergence, Sampling
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "Input", "InputLayer", "Grads", "RNN", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "Dense", "TimeDistributed", "RepeatVector", "Flatten",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Reshape", "Permute", "Concatenate", "Add",
    "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot", "Activation", "Softmax",
    "Masking", "Dropout", "Embedding", "Lambda", "Attention", "AdditiveAttention",
    "MultiHeadAttention", "BahdanauAttention", "LuongAttention", "AttentionPooling",
    "RelativeMultiHeadAttention", "Sampling", "KLDivergence",
    "Conv1D", "Conv1DTranspose", "MaxPooling1D", "AveragePooling1D", "MaxPool1D", "AvgPool1D",
    "UpSampling1D", "ZeroPadding1D", "Cropping1D", "SpatialDropout1D", "LayerNormalization",
    "BatchNormalization", "LeakyReLU", "PReLU", "ELU", "ReLU",
]
