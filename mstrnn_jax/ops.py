"""Primitive operations: 2-D convolution with a CPU-fast exact gradient, 2x2 pooling, eq. (8).

Layout everywhere is NHWC for activations (`[batch, height, width, channels]`) and HWIO for
kernels (`[kernel_h, kernel_w, in_channels, out_channels]`).

Why a second convolution implementation: on a CPU, XLA's convolution *kernel gradient*
(dL/dw) is 10-20x slower than a matrix product of the same size, and worse inside
`lax.scan`. `conv2d(..., impl='gemm')` computes the convolution as one GEMM of the im2col patch
matrix (built from kh*kw strided slices, no convolution) with the reshaped kernel, and through
`jax.custom_vjp` its kernel gradient as one GEMM `patches^T @ g` and its input gradient as
`g @ w^T` folded back onto the image (the transpose of the slicing). Only the input is saved
for the backward pass (patches are rebuilt). The gradients are exact (same mathematics,
tested against `jax.grad` of `lax.conv_general_dilated`); only the schedule differs. On GPU/TPU the native gradient is fast and `impl='native'` is the default there.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
from jax import lax

CONV_IMPLS = ('native', 'gemm')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def default_conv_impl(backend: str | None = None) -> str:
  """The conv implementation used for `impl='auto'`: the one measured faster per backend.

  'gemm' on CPU (4.0-4.5x XLA's conv) and on GPU (H100: 7 vs 13 ms per step at paper and small
  size; benchmarks/RESULTS.md "Train-step time"); 'native' on TPU (not measured: XLA's
  convolutions map onto the matrix units directly).
  """
  backend = jax.default_backend() if backend is None else backend
  return 'native' if backend == 'tpu' else 'gemm'


def resolve_conv_impl(impl: str) -> str:
  """Maps 'auto' to the backend's default; validates the name."""
  if impl == 'auto':
    return default_conv_impl()
  if impl not in CONV_IMPLS:
    raise ValueError(
      f"mstrnn_jax/ops.py: unknown conv impl {impl!r}; use 'auto' or one of {CONV_IMPLS}."
    )
  return impl


def _explicit_padding(
  spatial: tuple[int, int], kernel: tuple[int, int], stride: int, padding: str
) -> tuple[tuple[int, int], tuple[int, int]]:
  if padding not in ('VALID', 'SAME'):
    raise ValueError(f"mstrnn_jax/ops.py: padding must be 'VALID' or 'SAME', got {padding!r}.")
  pads = lax.padtype_to_pads(spatial, kernel, (stride, stride), padding)
  return tuple((int(lo), int(hi)) for lo, hi in pads)


def _native_conv(
  x: jax.Array, w: jax.Array, stride: int, pads: tuple[tuple[int, int], tuple[int, int]]
) -> jax.Array:
  return lax.conv_general_dilated(
    x, w, window_strides=(stride, stride), padding=pads, dimension_numbers=_DIMENSION_NUMBERS
  )


def im2col(
  x: jax.Array, kernel: tuple[int, int], stride: int, pads: tuple[tuple[int, int], tuple[int, int]]
) -> jax.Array:
  """Patch matrix of a convolution, built from strided slices (no convolution involved).

  Args:
    x: `[batch, height, width, in_channels]`.
    kernel: `(kernel_h, kernel_w)`.
    stride: spatial stride (same for both axes).
    pads: explicit `((top, bottom), (left, right))` zero padding.

  Returns:
    `[batch * out_h * out_w, kernel_h * kernel_w * in_channels]`, columns ordered like a
    HWIO kernel reshaped to `[kernel_h * kernel_w * in_channels, out_channels]`.
  """
  kh, kw = kernel
  if stride == kh == kw and not any(lo or hi for lo, hi in pads):
    return _window_patches(x, stride)
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  n, hp, wp, c = xp.shape
  ho = (hp - kh) // stride + 1
  wo = (wp - kw) // stride + 1
  cols = [
    xp[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
    for i in range(kh)
    for j in range(kw)
  ]
  return jnp.stack(cols, axis=3).reshape(n * ho * wo, kh * kw * c)


def _window_patches(x: jax.Array, k: int) -> jax.Array:
  """`im2col` of non-overlapping `k x k` windows (stride == kernel, no padding): one transpose
  instead of k*k strided slices (its gradient, col2im, is the inverse transpose, no pad-add).

  `x`: `[batch, height, width, in_channels]` -> `[batch * (height // k) * (width // k), k * k * in_channels]`.
  """
  n, h, w, c = x.shape
  ho, wo = h // k, w // k
  x = x[:, : ho * k, : wo * k, :].reshape(n, ho, k, wo, k, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n * ho * wo, k * k * c)


def _gemm_conv_forward(
  x: jax.Array, w: jax.Array, stride: int, pads: tuple[tuple[int, int], tuple[int, int]]
) -> jax.Array:
  """Convolution as `im2col(x) @ w` (one GEMM)."""
  kh, kw, _, cout = w.shape
  hp = x.shape[1] + sum(pads[0])
  wp = x.shape[2] + sum(pads[1])
  out_shape = (x.shape[0], (hp - kh) // stride + 1, (wp - kw) // stride + 1, cout)
  patches = im2col(x, (kh, kw), stride, pads)
  return jnp.dot(patches, w.reshape(-1, cout)).reshape(out_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _gemm_conv(
  x: jax.Array, w: jax.Array, stride: int, pads: tuple[tuple[int, int], tuple[int, int]]
) -> jax.Array:
  return _gemm_conv_forward(x, w, stride, pads)


def _gemm_conv_fwd(x, w, stride, pads):
  # Save the input, not the 4-9x larger patch matrix: patches are rebuilt in the backward pass.
  return _gemm_conv_forward(x, w, stride, pads), (x, w)


def _gemm_conv_bwd(stride, pads, residuals, g):
  x, w = residuals
  kh, kw, cin, cout = w.shape
  patches, patches_transpose = jax.vjp(lambda x_: im2col(x_, (kh, kw), stride, pads), x)
  g = g.reshape(-1, cout)
  # Kernel gradient: one GEMM  patches^T @ g  (instead of XLA's slow CPU kernel-gradient conv).
  dw = jnp.dot(patches.T, g).reshape(kh, kw, cin, cout)
  # Input gradient: g @ w^T back onto the image (col2im, the transpose of the slicing; a pad-add).
  (dx,) = patches_transpose(jnp.dot(g, w.reshape(-1, cout).T))
  return dx, dw


_gemm_conv.defvjp(_gemm_conv_fwd, _gemm_conv_bwd)


def conv2d(
  x: jax.Array, w: jax.Array, stride: int = 1, padding: str = 'VALID', impl: str = 'auto'
) -> jax.Array:
  """2-D convolution (cross-correlation, as in every deep-learning library).

  Args:
    x: `[batch, height, width, in_channels]`.
    w: `[kernel_h, kernel_w, in_channels, out_channels]`.
    stride: spatial stride for both axes.
    padding: 'VALID' or 'SAME' (the paper's recurrent 3x3 kernel with 1-pixel zero padding is
      'SAME' at stride 1).
    impl: 'native' (XLA's gradient), 'gemm' (kernel gradient as one patch-matrix GEMM) or 'auto'
      (`default_conv_impl()`: gemm on CPU and GPU, native on TPU). Results and gradients are equal.

  Returns:
    `[batch, out_height, out_width, out_channels]`.
  """
  chex.assert_rank([x, w], 4)
  if x.shape[-1] != w.shape[2]:
    raise ValueError(
      f'mstrnn_jax/ops.py: conv2d input has {x.shape[-1]} channels but the kernel '
      f'{w.shape} expects {w.shape[2]}.'
    )
  pads = _explicit_padding(x.shape[1:3], w.shape[:2], stride, padding)
  if resolve_conv_impl(impl) == 'gemm':
    return _gemm_conv(x, w, stride, pads)
  return _native_conv(x, w, stride, pads)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: str = 'VALID') -> int:
  """Spatial output size of `conv2d` on a `size`-wide input."""
  if padding == 'SAME':
    return -(-size // stride)
  return (size - kernel) // stride + 1 if size >= kernel else 0


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 (floor: an odd last row/column is dropped).

  The max of the four window positions by pairwise `jnp.maximum` over a reshape (no
  reduce_window); its backward pass is a few selects, the cheapest form on CPU.

  Args:
    x: `[..., height, width, channels]`.

  Returns:
    `[..., height // 2, width // 2, channels]`.
  """
  *lead, h, w, c = x.shape
  if h < 2 or w < 2:
    raise ValueError(f'mstrnn_jax/ops.py: max_pool_2x2 needs maps of at least 2x2, got {h}x{w}.')
  x = x[..., : h - h % 2, : w - w % 2, :].reshape(*lead, h // 2, 2, w // 2, 2, c)
  top = jnp.maximum(x[..., 0, :, 0, :], x[..., 0, :, 1, :])
  bottom = jnp.maximum(x[..., 1, :, 0, :], x[..., 1, :, 1, :])
  return jnp.maximum(top, bottom)


def relu_max_pool_2x2(x: jax.Array) -> jax.Array:
  """`max_pool_2x2(relu(x))`, computed as `relu(max_pool_2x2(x))` (equal: relu is monotone).

  Pooling first makes the relu's backward pass 4x smaller. `x`: `[..., height, width, channels]`.
  """
  return jax.nn.relu(max_pool_2x2(x))


def lecun_tanh(h: jax.Array) -> jax.Array:
  """Eq. (8): `1.7159 * tanh(2/3 * h)`, the fully-connected layers' activation."""
  return 1.7159 * jnp.tanh((2.0 / 3.0) * h)
