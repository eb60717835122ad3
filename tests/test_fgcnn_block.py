"""FGCNNBlock computes its convolution as a banded matmul and pools before the tanh; the result must
equal the paper's order (Conv2D with tanh, then max-pool, then the recombination) on its own weights."""
import numpy as np
import tensorflow as tf

from rankers.layers import FGCNNBlock, _band_index


def _reference(block: FGCNNBlock, v: np.ndarray) -> np.ndarray:
    """Conv2D('same', tanh) -> numpy max-pool ('same': the last window holds the leftover rows) -> Dense."""
    x = v[..., None].astype(np.float32)  # (B, F, k, 1)
    new = []
    for conv, dense, rows, (f, _, m, p) in zip(block.convs, block.recombine, block.rows, block.spec):
        y = conv(tf.constant(x)).numpy()  # (B, R, k, f), tanh applied
        x = np.stack([y[:, r * p:(r + 1) * p].max(axis=1) for r in range(rows)], axis=1)  # (B, rows, k, f)
        new.append(dense(tf.constant(x.reshape(len(v), -1))).numpy().reshape(len(v), rows * m, -1))
    return np.concatenate(new, axis=1)


def test_band_index_is_the_same_padded_convolution_by_hand():
    # 3 rows, 1 channel, 1 filter, width 3: out[r] = k0 x[r-1] + k1 x[r] + k2 x[r+1]; zero = index 3
    assert _band_index(3, 1, 1, 3).tolist() == [[1, 0, 3], [2, 1, 0], [3, 2, 1]]


def test_fgcnn_block_equals_conv_tanh_pool_recombine():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 7, 3)).astype(np.float32)  # 7 fields: pooling by 2 then 3 leaves ragged windows
    block = FGCNNBlock([4, 6], [3, 5], [1, 2], [2, 3], name="fg")
    got = block(tf.constant(v)).numpy()
    assert block.rows == [4, 2] and got.shape == (5, 4 * 1 + 2 * 2, 3)
    for conv in block.convs:  # non-zero biases, so pooling before the bias is checked too
        conv.bias.assign(rng.normal(size=conv.bias.shape).astype(np.float32))
    np.testing.assert_allclose(block(tf.constant(v)).numpy(), _reference(block, v), atol=1e-5)
    assert [w.name.split("/")[-2] for w in block.weights] == ["conv_0", "conv_0", "conv_1", "conv_1",
                                                              "recombine_0", "recombine_0", "recombine_1", "recombine_1"]
