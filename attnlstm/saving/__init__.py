"""Keras 3 files: whole models (``.keras``) and weights (``.weights.h5``), both ways, without
TensorFlow; the custom-object registry; Keras' object serialization.

- :func:`save_model` / :func:`load_model` (also ``model.save(path)``,
  ``attnlstm.models.load_model``): Keras 3 ``.keras`` archives -- ``metadata.json``,
  ``config.json`` (Keras' serialization) and ``model.weights.h5``; Keras 3 reads attnlstm's and
  attnlstm reads Keras' (zipfile, json and h5py only).
- :func:`save_weights` / :func:`load_weights` (``model.save_weights``): ``.weights.h5`` in
  Keras 3's layout (and legacy tf.keras ``.h5`` for reading).
- :func:`register_keras_serializable`, ``custom_objects=``, :class:`CustomObjectScope`: custom
  classes under Keras' registered names (``"package>Name"``).
- :class:`FileFormatError`: every unreadable or inconsistent file, naming the file and the path
  inside it. Loads are atomic: nothing is assigned unless everything was read and checked.

A ``.weights.h5`` stores each object's variables as datasets ``<path>/vars/0, 1, ...``:

- a model's layers sit under ``layers/<snake_case(ClassName)>``, repeats numbered ``_1, _2, ...``
  in Keras' layer order (a functional model counts its ``input_layer``; a Sequential does not);
- an LSTM's weights are under ``<path>/cell/vars``, a TimeDistributed's inner layer under
  ``<path>/layer``, MultiHeadAttention's under ``query_dense/key_dense/value_dense/output_dense``,
  a nested model adds its own ``layers/...``;
- other layers keep ``layer.weights`` in ``<path>/vars``; a compiled model's optimizer state
  is under ``optimizer/vars``.

Example:
    >>> model.save("model.keras")                    # keras.saving.load_model reads it
    >>> same = attnlstm.saving.load_model("model.keras")
    >>> model.save_weights("model.weights.h5")       # keras_model.load_weights(...) reads it
"""
from .object_registration import (CustomObjectScope, custom_object_scope, get_custom_objects,
                                  get_registered_name, get_registered_object,
                                  register_keras_serializable)
from .saving_lib import load_model, save_model
from .serialization import deserialize_keras_object, serialize_keras_object
from .weights import FileFormatError, load_weights, save_weights, weight_paths

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "weight_paths",
           "register_keras_serializable", "get_registered_name", "get_registered_object",
           "get_custom_objects", "CustomObjectScope", "custom_object_scope",
           "serialize_keras_object", "deserialize_keras_object", "FileFormatError"]
