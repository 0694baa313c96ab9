"""The binding's signatures (csrc/bind_spec.h): each kernel of attnlstm._core declares its
arguments once, and its docstring's first line and its shape list are generated from that
declaration, so they are true by construction; these tests pin the generated form and check
that the names it shows are the names the function takes."""
import re

import numpy as np
import pytest

from attnlstm import _core

KERNELS = sorted(n for n in dir(_core) if n.endswith(("_forward", "_backward")))


def _params(f):
    m = re.match(r"\w+\(([^)]*)\)", " ".join(f.__doc__.split()))
    return [p.strip().split("=")[0] for p in m.group(1).split(",")]


def test_every_kernel_has_a_generated_docstring():
    assert len(KERNELS) == 20
    for name in KERNELS:
        doc = getattr(_core, name).__doc__
        assert doc.startswith(name + "("), name
        assert "Float arrays share the dtype of `" in doc, name
        assert max(len(line) for line in doc.splitlines()) <= 92, name


def test_generated_docstring_form():
    assert _core.kl_forward.__doc__.startswith(
        "kl_forward(z_mean, z_log_var) -> kl\n\nKL(N(z_mean, exp(z_log_var)) || N(0, I))")
    assert _core.kl_forward.__doc__.endswith(
        "z_mean (B,Z), z_log_var (B,Z); returns kl (B,).\nFloat arrays share the dtype of "
        "`z_mean` (float32 or float64). Bad input raises\nTypeError or ValueError.")
    first = _core.lstm_forward.__doc__.split("\n\n")[0]
    assert first.endswith("save_gates=True)\n    -> (hs, cs, out, gates[, act_c])")
    assert "recon_forward(x_hat, x, mask=None, kind=0) -> loss" in _core.recon_forward.__doc__
    assert "bias (2,3H) or (3H,)" in _core.gru_forward.__doc__
    assert "attention_mask (B,Tq,Tv) or (B,NH,Tq,Tv) bool" in _core.mha_forward.__doc__


@pytest.mark.parametrize("name", KERNELS)
def test_signature_names_are_the_keywords(name):
    """Every name of the signature line is a keyword the function takes (a wrong one would be
    'an invalid keyword argument')."""
    f = getattr(_core, name)
    params = _params(f)
    with pytest.raises((TypeError, ValueError)) as e:
        f(**{p: "junk" for p in params})
    assert "keyword" not in str(e.value)


def test_option_choices_word_the_message():
    x = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match=r"^recon_forward: `kind` must be 0 \(squared error\) "
                                         r"or 1 \(absolute error\), got 2\.$"):
        _core.recon_forward(x, x, None, 2)
    q = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match=r"`score_mode` must be 0 \(dot\) or 1 \(concat\), "):
        _core.dot_attention_forward(q, q, q, score_mode=5)
    with pytest.raises(ValueError, match=r"`impl` must be 0 \(automatic\), 1 \(generic\), 2 "
                                         r"\(AVX2\) or 3 \(AVX-512\), got 9"):
        _core.gru_forward(np.zeros((1, 2, 3)), np.zeros((3, 6)), np.zeros((2, 6)), impl=9)
