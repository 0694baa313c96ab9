"""Keras' ``keras.preprocessing`` module path: ``preprocessing.sequence.pad_sequences``."""
from .. import sequence

__all__ = ["sequence"]
