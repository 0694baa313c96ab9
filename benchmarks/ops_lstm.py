"""LSTM adapters: forward (float32 / float64) and forward+backward, one small function per contender.

Every setup function gets the same NumPy data (Keras layout: kernel (D,4H), recurrent_kernel (H,4H),
bias (4H,), gate order i,f,c,o, which is also PyTorch's i,f,g,o) and returns a zero-argument callable.
The callable does the timed work and returns the canonical outputs
    forward:  [y (B,T,H)]
    fwd+bwd:  [y, dx (B,T,D), dW (D,4H), dU (H,4H), db (4H,)]   for the loss sum(y * dy)
(framework tensors; the equality check converts them). Conversions to framework tensors happen
outside the timed callable.
"""
import numpy as np

from .common import (NOT_YET, NotAvailable, attnlstm, keras, lstm_bwd_flops, lstm_fwd_flops,
                     onnxruntime, ort_session, torch)

OPS = {
    "lstm_fwd": "LSTM forward",
    "lstm_fwdbwd": "LSTM forward+backward",
}


def make_data(shape, dtype, seed=0):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    d = {"x": rng.standard_normal((B, T, D)), "W": rng.uniform(-s, s, (D, 4 * H)),
         "U": rng.uniform(-s, s, (H, 4 * H)), "b": rng.uniform(-s, s, 4 * H),
         "dy": rng.standard_normal((B, T, H))}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in d.items()}


def flops(op, shape):
    f = lstm_fwd_flops(shape["B"], shape["T"], shape["D"], shape["H"])
    if op == "lstm_fwdbwd":
        f += lstm_bwd_flops(shape["B"], shape["T"], shape["D"], shape["H"])
    return f


def setup_attnlstm(op, d):
    ops = attnlstm().ops
    x, W, U, b, dy = d["x"], d["W"], d["U"], d["b"], d["dy"]
    if op == "lstm_fwd":
        return lambda: [ops.lstm(x, W, U, b, return_sequences=True)]
    if not hasattr(ops, "lstm_backward"):
        raise NotAvailable(NOT_YET)

    def fn():
        s = ops.lstm_forward(x, W, U, b)
        g = ops.lstm_backward(s, d_outputs=dy)   # dict keyed by argument name
        return [s["outputs"], g["x"], g["kernel"], g["recurrent_kernel"], g["bias"]]
    return fn


def setup_torch(op, d):
    t = torch()
    B, T, D = d["x"].shape
    H = d["U"].shape[0]
    dt = t.float64 if d["x"].dtype == np.float64 else t.float32
    m = t.nn.LSTM(D, H, batch_first=True).to(dt)
    with t.no_grad():
        m.weight_ih_l0.copy_(t.from_numpy(d["W"].T.copy()))
        m.weight_hh_l0.copy_(t.from_numpy(d["U"].T.copy()))
        m.bias_ih_l0.copy_(t.from_numpy(d["b"]))
        m.bias_hh_l0.zero_()
    x = t.from_numpy(d["x"].copy())
    if op == "lstm_fwd":
        def fwd():
            with t.inference_mode():
                return [m(x)[0]]
        return fwd
    x.requires_grad_(True)
    dy = t.from_numpy(d["dy"].copy())
    params = list(m.parameters())

    def fn():
        for p in params:
            p.grad = None
        x.grad = None
        y = m(x)[0]
        y.backward(dy)
        return [y, x.grad, m.weight_ih_l0.grad.T, m.weight_hh_l0.grad.T, m.bias_ih_l0.grad]
    return fn


def _keras_layer(d):
    k, tf = keras()
    B, T, D = d["x"].shape
    H = d["U"].shape[0]
    dt = "float64" if d["x"].dtype == np.float64 else "float32"
    layer = k.layers.LSTM(H, return_sequences=True, dtype=dt)
    layer.build((B, T, D))
    layer.set_weights([d["W"], d["U"], d["b"]])
    return k, tf, layer, dt


def setup_keras(op, d):
    k, tf, layer, dt = _keras_layer(d)
    x = tf.constant(d["x"])
    if op == "lstm_fwd":
        return lambda: [layer(x)]
    dy = tf.constant(d["dy"])
    cell = layer.cell

    def fn():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        g = tape.gradient(y, [x, cell.kernel, cell.recurrent_kernel, cell.bias],
                          output_gradients=dy)
        return [y] + g
    return fn


def setup_keras_jit(op, d):
    k, tf, layer, dt = _keras_layer(d)
    B, T, D = d["x"].shape
    inp = k.Input((T, D), batch_size=B, dtype=dt)
    model = k.Model(inp, layer(inp))
    x = d["x"]
    if op == "lstm_fwd":
        return lambda: [model.predict_on_batch(x)]
    # train_on_batch: loss = sum(y * dy) (gradient dy w.r.t. y, as for the others), SGD with
    # learning rate 0 so the weights stay put; it does not compute dx (x is not a variable).
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.0),
                  loss=lambda y_true, y_pred: k.ops.sum(y_true * y_pred))
    dy = d["dy"]
    return lambda: [model.train_on_batch(x, dy)]


def onnx_lstm_model(d):
    """The same weights as an ONNX `LSTM` node (opset 14) between two Transposes, so the graph
    takes and returns batch-major (B,T,*) like the other contenders. ONNX's layout: W (1,4H,D),
    R (1,4H,H), B (1,8H) = [Wb | Rb], gates in the order i, o, f, c (Keras': i, f, c, o); its
    default activations are Keras' (sigmoid, tanh, tanh)."""
    onnx, _ = onnxruntime()
    from onnx import TensorProto, helper, numpy_helper
    B, T, D = d["x"].shape
    H = d["U"].shape[0]
    gates = lambda a: np.concatenate([a[..., k * H:(k + 1) * H] for k in (0, 3, 1, 2)], -1)  # noqa
    W = gates(d["W"]).T[None]                                     # (1, 4H, D)
    R = gates(d["U"]).T[None]                                     # (1, 4H, H)
    bias = np.concatenate([gates(d["b"]), np.zeros(4 * H, d["b"].dtype)])[None]
    et = TensorProto.DOUBLE if d["x"].dtype == np.float64 else TensorProto.FLOAT
    inits = [numpy_helper.from_array(np.ascontiguousarray(a), n)
             for a, n in ((W, "W"), (R, "R"), (bias, "B"))]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y"], hidden_size=H),
             helper.make_node("Squeeze", ["Y", "axes"], ["Ys"]),
             helper.make_node("Transpose", ["Ys"], ["y"], perm=[1, 0, 2])]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
    graph = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info("x", et, [B, T, D])],
                              [helper.make_tensor_value_info("y", et, [B, T, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def setup_onnxruntime(op, d):
    if op != "lstm_fwd":
        raise NotAvailable("ONNX Runtime: inference only")
    if d["x"].dtype != np.float32:
        # its CPU kernel raises "LSTM operator does not support double yet" (1.32)
        raise NotAvailable("ONNX Runtime: LSTM is float32 only")
    sess = ort_session(onnx_lstm_model(d))
    feed = {"x": d["x"]}
    return lambda: sess.run(["y"], feed)


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit, "onnxruntime": setup_onnxruntime}


def ref_loss(op, d, ref):
    """The loss train_on_batch reports (sum(y * dy)), from the reference outputs."""
    return float(np.sum(np.asarray(ref[0], np.float64) * d["dy"]))
