"""Size limits of the C kernels, checked on shapes before anything is converted or allocated.

The kernels call a BLAS with 32-bit integer sizes (scipy-openblas32), so every dimension and
row count that reaches it must be at most 2**31 - 1. The C binding checks this too, but only
after converting its inputs: a zero-stride view of absurd size would first be copied (gigabytes)
or fail with a MemoryError that names no argument. The ops call :func:`check_blas_sizes` on the
shapes as given, so the error names the argument, the axis and its value instead.
"""
BLAS_INT_MAX = 2**31 - 1


def check_blas_sizes(name, arg, shape, sizes):
    """Raises ValueError if a size exceeds the BLAS's 32-bit limit.

    Args:
        name: the op, e.g. "ops.lstm".
        arg: the argument the sizes come from, e.g. "x" (named in the message with its shape).
        shape: that argument's shape.
        sizes: ``{label: value}`` in checking order, e.g. ``{"timesteps": T,
            "batch*timesteps": B * T}`` (Python ints: products do not overflow).

    Raises:
        ValueError: ``"ops.lstm: timesteps=2147483648 exceeds the BLAS's 32-bit limit
            2147483647 (`x` has shape (1, 2147483648, 1))."``
    """
    for label, value in sizes.items():
        if int(value) > BLAS_INT_MAX:
            dims = ", ".join(str(int(s)) for s in shape)
            raise ValueError(
                f"{name}: {label}={int(value)} exceeds the BLAS's 32-bit limit {BLAS_INT_MAX} "
                f"(`{arg}` has shape ({dims}{',' if len(shape) == 1 else ''})); split the "
                f"input into smaller calls.")
