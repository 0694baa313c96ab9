"""Symbolic tensors, the Layer base class and models."""
from .base import Input, InputLayer, KerasTensor, Layer, OpLayer, Variable
from .functional import Model, Sequential

__all__ = ["Input", "InputLayer", "KerasTensor", "Layer", "OpLayer", "Variable", "Model",
           "Sequential"]
