"""ops: the GEMM conv equals XLA's conv in value and gradients; pooling; eq. (8)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from mstrnn_jax import ops

CASES = [  # (input shape, kernel shape, stride, padding): every conv the models use
  ((3, 11, 11, 3), (3, 3, 3, 4), 3, 'VALID'),  # conv0, CL1AD-like stride
  ((2, 12, 9, 3), (3, 3, 3, 4), 3, 'VALID'),  # conv0, stride == kernel, exact fit in height
  ((3, 10, 9, 3), (3, 3, 3, 4), 2, 'VALID'),  # conv0, 3ACWD-like stride, odd sizes
  ((2, 8, 8, 5), (3, 3, 5, 6), 1, 'VALID'),  # k
  ((2, 7, 7, 5), (2, 2, 5, 6), 1, 'VALID'),  # z, k_tilde
  ((2, 5, 5, 6), (3, 3, 6, 6), 1, 'SAME'),  # z_tilde (1-pixel zero padding)
  ((2, 1, 1, 6), (3, 3, 6, 6), 1, 'SAME'),  # z_tilde on a 1x1 context map
]


def reference_conv(x, w, stride, padding):
  return lax.conv_general_dilated(
    x, w, (stride, stride), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def value_and_vjp(conv, x, w, cotangent):
  out, vjp = jax.vjp(conv, x, w)
  return (out,) + vjp(cotangent)


@pytest.mark.parametrize('x_shape,w_shape,stride,padding', CASES)
def test_gemm_conv_value_and_gradients_equal_native(x_shape, w_shape, stride, padding):
  kx, kw, kg = jax.random.split(jax.random.PRNGKey(0), 3)
  with jax.enable_x64(True):
    x = jax.random.normal(kx, x_shape, jnp.float64)
    w = jax.random.normal(kw, w_shape, jnp.float64)
    cotangent = jax.random.normal(kg, reference_conv(x, w, stride, padding).shape, jnp.float64)
    run = jax.jit(lambda conv, *args: value_and_vjp(conv, *args), static_argnums=0)
    want = run(lambda x_, w_: reference_conv(x_, w_, stride, padding), x, w, cotangent)
    got = run(lambda x_, w_: ops.conv2d(x_, w_, stride, padding, 'gemm'), x, w, cotangent)
    for name, g, r in zip(('value', 'input grad', 'kernel grad'), got, want):
      np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-11, err_msg=name)


def test_conv_rejects_mismatched_channels_and_unknown_impl():
  with pytest.raises(ValueError, match='channels'):
    ops.conv2d(jnp.zeros((1, 5, 5, 3)), jnp.zeros((3, 3, 4, 2)))
  with pytest.raises(ValueError, match='impl'):
    ops.conv2d(jnp.zeros((1, 5, 5, 3)), jnp.zeros((3, 3, 3, 2)), impl='fft')


def test_default_impl_is_gemm_on_cpu_and_native_on_accelerators():
  assert ops.default_conv_impl('cpu') == 'gemm'
  assert ops.default_conv_impl('gpu') == 'gemm'
  assert ops.default_conv_impl('tpu') == 'native'
  assert ops.resolve_conv_impl('auto') == ops.default_conv_impl()


def test_conv_output_size_matches_paper_preprocessing():
  assert ops.conv_output_size(108, 3, 3) == 36
  assert ops.conv_output_size(73, 3, 2) == 36
  assert ops.conv_output_size(7, 3, 1, 'SAME') == 7


def test_max_pool_2x2_floor():
  x = np.random.default_rng(0).standard_normal((2, 3, 7, 5, 4))
  got = ops.max_pool_2x2(jnp.asarray(x))
  assert got.shape == (2, 3, 3, 2, 4)
  for i in range(3):
    for j in range(2):
      np.testing.assert_allclose(
        got[:, :, i, j], x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(2, 3)), rtol=1e-6
      )
  with pytest.raises(ValueError, match='2x2'):
    ops.max_pool_2x2(jnp.zeros((1, 1, 4, 3)))


def test_lecun_tanh_eq8():
  np.testing.assert_allclose(
    ops.lecun_tanh(jnp.array([1.0, -1.0, 0.0])), [1.0, -1.0, 0.0], atol=2e-4
  )
  np.testing.assert_allclose(ops.lecun_tanh(jnp.array(3.0)), 1.7159 * np.tanh(2.0), rtol=1e-6)
