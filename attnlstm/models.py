"""Models and model files, as ``keras.models``: :class:`Model`, :class:`Sequential`,
:func:`load_model`, :func:`model_from_json`, :func:`clone_model`."""
import json

from .engine.functional import Model, Sequential
from .saving import load_model
from .saving.serialization import _Ctx, deserialize_keras_object

__all__ = ["Model", "Sequential", "load_model", "model_from_json", "clone_model"]


def model_from_json(json_string, custom_objects=None):
    """The model (with fresh weights) described by ``model.to_json()`` or a Keras 3 model JSON.

    Raises:
        FileFormatError (ValueError): invalid JSON, an unknown class or argument (naming its
            path in the config).
    """
    from .saving import FileFormatError
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"model_from_json: not valid JSON ({exc}).") from None
    ctx = _Ctx(filepath="<json>", member="json", custom_objects=custom_objects)
    return deserialize_keras_object(config, _ctx=ctx, _path="config")


def clone_model(model):
    """A new model with the same architecture and fresh weights (``keras.models.clone_model``
    without its cloning functions)."""
    return model_from_json(model.to_json())
