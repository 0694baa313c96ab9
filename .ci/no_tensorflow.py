"""pytest plugin for `make sanitize`: TensorFlow/Keras are not imported under the sanitizers
(their own code is not what is checked, and under ASan they are slow and noisy), so a test that
would import them fails loudly instead of silently slowing the run; `make sanitize` deselects the
Keras parity tests by name."""
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is not imported under make sanitize (Keras parity tests "
                              f"are deselected there; run them with make test)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
