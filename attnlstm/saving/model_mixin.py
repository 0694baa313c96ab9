"""``save``, ``to_json``, ``get_config``/``from_config``, ``compile`` bookkeeping and pickling
for :class:`attnlstm.Model` (mixed in; nothing here runs at import of the engine)."""
import json

__all__ = ["ModelFileMixin"]


class ModelFileMixin:
    """Keras 3's whole-model file API on attnlstm models."""

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, **kwargs):
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)
        # What the user passed, for the .keras compile_config (Keras keeps the same).
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics}

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Write the whole model (architecture, weights, compile config and optimizer state)
        to a Keras 3 ``.keras`` file; see :func:`attnlstm.saving.save_model`.

        Raises:
            ValueError: a path not ending in ``.keras``, an unbuilt model, or an existing file
                with ``overwrite=False``.
        """
        if kwargs:
            raise ValueError(f"Unsupported arguments for Model.save: {sorted(kwargs)}. "
                             "attnlstm writes the Keras 3 .keras format only.")
        from .saving_lib import save_model
        save_model(self, filepath, overwrite=overwrite, zipped=zipped)

    def get_config(self):
        """Keras 3's config: a Functional graph (layers with ``inbound_nodes``,
        ``input_layers``, ``output_layers``) or a Sequential's ``layers`` list."""
        from .weights import _is_sequential
        from .saving_lib import functional_config, sequential_config
        if _is_sequential(self):
            return sequential_config(self)
        if not getattr(self, "_graph_ready", False):
            raise ValueError(f"Model '{self.name}' has no graph yet, so it has no config.")
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model described by a Functional/Sequential config (from :meth:`get_config` or
        a Keras 3 ``config.json``)."""
        from .serialization import _Ctx
        from .saving_lib import model_from_keras_config
        return model_from_keras_config(cls, config, _Ctx(custom_objects=custom_objects),
                                       "config")

    def to_json(self, **kwargs):
        """The model's architecture as Keras 3 JSON (``{"module", "class_name", "config",
        ...}``); :func:`attnlstm.models.model_from_json` reads it back."""
        from .serialization import serialize_keras_object
        return json.dumps(serialize_keras_object(self), **kwargs)

    def __reduce__(self):
        """Pickle as the bytes of a ``.keras`` archive (as Keras 3), so the compiled state and
        the optimizer's slots travel and training resumes bit for bit."""
        if getattr(self, "_graph_ready", False):
            from .saving_lib import archive_bytes, model_from_bytes
            return (model_from_bytes, (archive_bytes(self, include_rng=True),))
        return super().__reduce__()

    def __deepcopy__(self, memo):
        if getattr(self, "_graph_ready", False):
            from .saving_lib import archive_bytes, model_from_bytes
            copy = model_from_bytes(archive_bytes(self, include_rng=True))
            memo[id(self)] = copy
            return copy
        import copy as _copy
        cls = type(self)
        out = cls.__new__(cls)
        memo[id(self)] = out
        for k, v in self.__dict__.items():
            setattr(out, k, _copy.deepcopy(v, memo))
        return out
