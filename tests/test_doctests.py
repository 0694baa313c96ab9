"""Every docstring example in the attnlstm package runs and prints what it shows
(``--doctest-modules`` over ``attnlstm/``, with names reset so printed layer names are stable).

Examples may use ``np``, ``attnlstm``, ``layers``, ``Input``, ``Model`` and ``Sequential``
without importing them; the examples of :mod:`attnlstm.saving` also get a small ``model`` and a
``keras_model.weights.h5`` written by Keras 3 in a temporary working directory.
"""
import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import attnlstm

MODULES = sorted(m.name for m in pkgutil.walk_packages(attnlstm.__path__, "attnlstm.")
                 if not m.name.rsplit(".", 1)[-1].startswith("_core"))


def _tests(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


def _saving_fixtures(keras, tmp_path):
    """A small model and the weights file Keras 3 writes for the same architecture."""
    from attnlstm import Input, Sequential, layers
    km = keras.Sequential([keras.Input((20, 5)), keras.layers.LSTM(8), keras.layers.Dense(1)])
    km.save_weights(str(tmp_path / "keras_model.weights.h5"))
    attnlstm.backend.clear_session()
    return Sequential([Input((20, 5)), layers.LSTM(8), layers.Dense(1)])


def test_every_module_is_collected():
    assert "attnlstm.regularizers" in MODULES and "attnlstm.layers.core" in MODULES
    assert sum(len(_tests(importlib.import_module(m))) for m in MODULES) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch, request):
    module = importlib.import_module(name)
    tests = _tests(module)
    if not tests:
        return
    from attnlstm import Input, Model, Sequential, layers
    extra = {"np": np, "attnlstm": attnlstm, "layers": layers, "Input": Input, "Model": Model,
             "Sequential": Sequential}
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for t in tests:
        attnlstm.backend.clear_session()
        globs = {**t.globs, **extra}
        if name == "attnlstm.saving":
            globs["model"] = _saving_fixtures(request.getfixturevalue("keras"), tmp_path)
        t.globs = globs
        out = []
        result = runner.run(t, out=out.append, clear_globs=True)
        if result.failed:
            failures.append("".join(out))
    assert not failures, "\n".join(failures)
