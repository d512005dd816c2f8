"""Layers as pure functions over explicit parameter pytrees, named after the paper's symbols.

Equations (Lee, Jung & Tani), for context layer `l`, with `BN` the per-time-step batch norm:

  feature units, eqs. (5)-(6):
    fhat_t = (1 - 1/tau) fhat_{t-1} + (1/tau) [ BN_{gamma,beta}(k * p_{l-1}^t + b)
                                              + BN_{gamma^,beta^}(z * c_{l-1}^t) ]
    f_t    = max(0, fhat_t),           p_l^t = maxpool_2x2(f_t)
  context units, eq. (7):
    chat_t = (1 - 1/tau) chat_{t-1} + (1/tau) [ BN_{gamma,beta}(k~ * p_l^t + b~)
                                              + BN_{gamma^,beta^}(z~ * c_l^{t-1}) ]
    c_t    = max(0, chat_t)

Parameter names: feature units `k`, `b`, `bn_k`, and (from the second context layer on) `z`,
`bn_z`; context units `k_tilde`, `b_tilde`, `bn_k_tilde`, `z_tilde`, `bn_z_tilde`. Every BN is
`{'gamma': [C], 'beta': [C]}` with running statistics `{'mean': [bn_steps, C], 'var': [bn_steps, C]}`
in `batch_stats` under the same name.

Kernels (Sec. III.A): `k` 3x3 valid, `z` 2x2 valid, `k_tilde` 2x2 valid, `z_tilde` 3x3 with
1-pixel zero padding ('SAME'); all strides 1.

Recurrent batch norm (Cooijmans et al., Sec. II.A/E): each BN keeps statistics *per time step*.
In training, step t is normalised with the mean/variance over (batch, height, width) of step t;
in evaluation with the stored running statistics of step `min(t, bn_steps - 1)` (steps past
the stored length reuse the last one). gamma starts at 0.1, beta at 0.

Hoisting: every feed-forward path (`k`, `z`, `k_tilde`, the FC and LSTM input weights) runs
over all `batch * time` frames at once (`*_drive` functions, `[batch, time, ...]`); only the
recurrent context convolution `z_tilde` and the LSTM's hidden path sit inside a time scan
(`context_step`, `lstm_step`). The same step functions serve the all-in-scan variant and the
streaming `models.step`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from mstrnn_jax import ops
from mstrnn_jax import scan

BN_GAMMA_INIT = 0.1  # Sec. II.E, after Cooijmans et al.
BN_BETA_INIT = 0.0
LSTM_FORGET_BIAS_INIT = 1.0  # Sec. II.E

Params = dict
Stats = dict


# ----------------------------------------------------------------------------- batch norm
def init_bn(channels: int) -> Params:
  """BN parameters `{'gamma': [C] = 0.1, 'beta': [C] = 0}`."""
  return {
    'gamma': jnp.full((channels,), BN_GAMMA_INIT, jnp.float32),
    'beta': jnp.full((channels,), BN_BETA_INIT, jnp.float32),
  }


def init_bn_stats(bn_steps: int, channels: int) -> Stats:
  """Running statistics `{'mean': [bn_steps, C] = 0, 'var': [bn_steps, C] = 1}`."""
  return {
    'mean': jnp.zeros((bn_steps, channels), jnp.float32),
    'var': jnp.ones((bn_steps, channels), jnp.float32),
  }


def stats_at_steps_tree(batch_stats: Stats, steps: jax.Array) -> Stats:
  """Running statistics of every BN for time steps `steps`, clamped to the stored length.

  Args:
    batch_stats: tree whose leaves are `[bn_steps, C]`.
    steps: int array `[...]` of time indices.

  Returns:
    The same tree with leaves `[..., C]`: row `min(t, bn_steps - 1)` for each `t` (steps past
    the stored length reuse the last stored step).
  """
  return jax.tree.map(lambda s: jnp.asarray(s)[jnp.minimum(steps, s.shape[0] - 1)], batch_stats)


def _normalize(
  params: Params,
  running: Stats,
  x: jax.Array,
  train: bool,
  epsilon: float,
  axes: tuple[int, ...],
  stats_shape: tuple[int, ...],
) -> tuple[jax.Array, Stats]:
  """BN of `x` with statistics over `axes`; `running` leaves have `stats_shape`."""
  if train:
    y, mean, var = _bn_train(x, params['gamma'], params['beta'], axes, epsilon)
    return y, {'mean': mean.reshape(stats_shape), 'var': var.reshape(stats_shape)}
  keep = [1 if i in axes else n for i, n in enumerate(x.shape)]
  mean, var = (jnp.reshape(running[k], keep) for k in ('mean', 'var'))
  y = (x - mean) * jax.lax.rsqrt(var + epsilon) * params['gamma'] + params['beta']
  return y, running


def _bn_train_forward(
  x: jax.Array, gamma: jax.Array, beta: jax.Array, axes: tuple[int, ...], epsilon: float
) -> tuple[tuple[jax.Array, jax.Array, jax.Array], jax.Array]:
  """`((y, mean, var), rstd)`: training BN of `x` over `axes` (statistics keep their dims)."""
  # One pass over x for both moments (var = E[x^2] - E[x]^2, clamped at 0, as flax's
  # default fast variance): on CPU half the time of the two-pass form.
  mean = jnp.mean(x, axis=axes, keepdims=True)
  var = jnp.maximum(jnp.mean(jnp.square(x), axis=axes, keepdims=True) - jnp.square(mean), 0.0)
  rstd = jax.lax.rsqrt(var + epsilon)
  return ((x - mean) * rstd * gamma + beta, mean, var), rstd


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _bn_train(
  x: jax.Array, gamma: jax.Array, beta: jax.Array, axes: tuple[int, ...], epsilon: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(y, mean, var)` of training BN; its gradient keeps only `x` and the statistics.

  XLA's own gradient of the same expression keeps the centred input `x - mean` and its scaled
  copy, two more arrays of `x`'s size per BN for the backward pass (PyTorch's BN keeps only
  the input and the statistics, as here; docs/model.md, "Where the memory goes").
  """
  return _bn_train_forward(x, gamma, beta, axes, epsilon)[0]


def _bn_train_fwd(x, gamma, beta, axes, epsilon):
  (y, mean, var), rstd = _bn_train_forward(x, gamma, beta, axes, epsilon)
  return (y, mean, var), (x, mean, rstd, gamma)


def _bn_train_bwd(axes, epsilon, residuals, cotangents):
  """Exact gradient of `_bn_train_forward`, `xhat = (x - mean) * rstd` recomputed:

    dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) + dmean / n + 2 dvar (x - mean) / n
    dgamma = sum(dy xhat), dbeta = sum(dy)   (sums over every axis but the channel axis)

  with means over `axes` (n elements). The variance's clamp at 0 is treated as inactive: a
  clamped channel is constant, so `x - mean` and every term through the variance vanish.
  """
  del epsilon
  x, mean, rstd, gamma = residuals
  dy, dmean, dvar = cotangents
  n = math.prod(x.shape[a] for a in axes)
  centred = x - mean
  xhat = centred * rstd
  dy_mean = jnp.mean(dy, axis=axes, keepdims=True)
  dy_xhat_mean = jnp.mean(dy * xhat, axis=axes, keepdims=True)
  dx = gamma * rstd * (dy - dy_mean - xhat * dy_xhat_mean) + (dmean + 2.0 * dvar * centred) / n
  channel_sums = tuple(range(x.ndim - 1))
  return dx, jnp.sum(dy * xhat, axis=channel_sums), jnp.sum(dy, axis=channel_sums)


_bn_train.defvjp(_bn_train_fwd, _bn_train_bwd)


def batch_norm(
  params: Params, running: Stats, x: jax.Array, train: bool, epsilon: float
) -> tuple[jax.Array, Stats]:
  """Batch norm of one time step, eqs. (1)-(4).

  Args:
    params: `{'gamma': [C], 'beta': [C]}`.
    running: `{'mean': [C], 'var': [C]}`, the stored statistics of this step (used if not train).
    x: `[batch, ..., C]`; statistics are over every axis but the last.
    train: batch statistics (True) or stored running statistics (False).
    epsilon: added to the variance.

  Returns:
    `(y [batch, ..., C], stats)`: `stats` are the batch statistics `{'mean': [C], 'var': [C]}`
    (biased variance) in training, `running` unchanged in evaluation.
  """
  return _normalize(params, running, x, train, epsilon, tuple(range(x.ndim - 1)), x.shape[-1:])


def batch_norm_over_time(
  params: Params, running: Stats, x: jax.Array, train: bool, epsilon: float
) -> tuple[jax.Array, Stats]:
  """Per-time-step batch norm of a whole sequence (`batch_norm` at every step, in one pass).

  Args:
    params: `{'gamma': [C], 'beta': [C]}` (shared by all steps).
    running: `{'mean': [time, C], 'var': [time, C]}` (see `stats_at_steps_tree`).
    x: `[batch, time, ..., C]`; statistics over batch and space, separately per step.

  Returns:
    `(y [batch, time, ..., C], stats {'mean': [time, C], 'var': [time, C]})`.
  """
  axes = (0,) + tuple(range(2, x.ndim - 1))
  return _normalize(params, running, x, train, epsilon, axes, (x.shape[1], x.shape[-1]))


# ----------------------------------------------------------------------------- helpers
def conv_frames(x: jax.Array, w: jax.Array, stride: int, padding: str, impl: str) -> jax.Array:
  """`ops.conv2d` over every frame of `[batch, time, H, W, C]` at once (one big batch)."""
  b, t = x.shape[:2]
  y = ops.conv2d(x.reshape((b * t,) + x.shape[2:]), w, stride, padding, impl)
  return y.reshape((b, t) + y.shape[1:])


# Names of the weight kernels in every layer's params. `init_*` functions create them as zeros
# (shapes only); `init_kernels` fills all of them from one random draw (a single RNG kernel:
# one `jax.random` call per leaf makes XLA compile for seconds on CPU).
KERNEL_NAMES = ('w', 'k', 'z', 'k_tilde', 'z_tilde', 'w_x', 'w_h')


def _zeros(*shape: int) -> jax.Array:
  return jnp.zeros(shape, jnp.float32)


def init_kernels(params: Params, rng: jax.Array) -> Params:
  """Fills every kernel (`KERNEL_NAMES`) with LeCun-normal values: truncated normal (+-2 std)
  with variance 1/fan_in, fan_in = product of all but the last axis. BN follows every product,
  so the scale only matters at the start of training."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(params)
  is_kernel = [path[-1].key in KERNEL_NAMES for path, _ in paths]
  sizes = [leaf.size for (_, leaf), k in zip(paths, is_kernel) if k]
  draws = jax.random.truncated_normal(rng, -2.0, 2.0, (sum(sizes),), jnp.float32)
  # Standard deviation of a unit normal truncated to [-2, 2]: rescale to unit variance.
  draws = draws / 0.87962566103423978
  leaves, offset = [], 0
  for (_, leaf), kernel in zip(paths, is_kernel):
    if kernel:
      fan_in = leaf.size // leaf.shape[-1]
      values = draws[offset : offset + leaf.size].reshape(leaf.shape) * (1.0 / fan_in) ** 0.5
      leaves.append(values.astype(leaf.dtype))
      offset += leaf.size
    else:
      leaves.append(leaf)
  return jax.tree.unflatten(treedef, leaves)


# ----------------------------------------------------------------------------- plain conv / FC
def init_conv(kernel: int, in_channels: int, out_channels: int) -> Params:
  """Feed-forward conv + BN: `{'w': [k, k, in, out], 'b': [out], 'bn': BN}` (kernel: see `init_kernels`)."""
  return {
    'w': _zeros(kernel, kernel, in_channels, out_channels),
    'b': jnp.zeros((out_channels,), jnp.float32),
    'bn': init_bn(out_channels),
  }


def conv_bn(
  params: Params, running: Stats, x: jax.Array, stride: int, train: bool, impl: str, epsilon: float
) -> tuple[jax.Array, Stats]:
  """`BN(w * x + b)` over all frames (valid padding): the pre-activation of a conv layer
  (BN before the ReLU, Sec. II.A; the caller applies the ReLU, fused with the pooling).

  Args:
    x: `[batch, time, H, W, C_in]`; running: `{'bn': {'mean'/'var': [time, C_out]}}`.

  Returns:
    `([batch, time, H', W', C_out], {'bn': batch stats [time, C_out]})`.
  """
  h = conv_frames(x, params['w'], stride, 'VALID', impl) + params['b']
  h, stats = batch_norm_over_time(params['bn'], running['bn'], h, train, epsilon)
  return h, {'bn': stats}


def init_dense(in_features: int, out_features: int, with_bn: bool = True) -> Params:
  """Dense layer `{'w': [in, out], 'b': [out]}` (+ `'bn'` for a hidden FC layer)."""
  params = {'w': _zeros(in_features, out_features), 'b': jnp.zeros((out_features,), jnp.float32)}
  if with_bn:
    params['bn'] = init_bn(out_features)
  return params


def fully_connected(
  params: Params, running: Stats, x: jax.Array, train: bool, epsilon: float
) -> tuple[jax.Array, Stats]:
  """Hidden FC layer: `lecun_tanh(BN(x w + b))` (eq. 8, BN before the activation).

  Args:
    x: `[batch, time, in]`; running: `{'bn': {'mean'/'var': [time, out]}}`.

  Returns:
    `([batch, time, out], {'bn': batch stats})`.
  """
  h = x @ params['w'] + params['b']
  h, stats = batch_norm_over_time(params['bn'], running['bn'], h, train, epsilon)
  return ops.lecun_tanh(h), {'bn': stats}


def readout(params: Params, x: jax.Array) -> jax.Array:
  """Softmax layer's logits `x w + b`: `[batch, time, in]` -> `[batch, time, classes]`."""
  return x @ params['w'] + params['b']


# ----------------------------------------------------------------------------- feature units
def init_feature_units(pool_channels: int, features: int, context_channels: int | None) -> Params:
  """Feature units of a context layer (or an MSTNN leaky conv layer if `context_channels` is None).

  `k`: [3, 3, N, F] (pooling -> feature), `b`: [F], `bn_k`; `z`: [2, 2, A, F] (previous
  context -> feature) and `bn_z` when `context_channels` is given.
  """
  params = {
    'k': _zeros(3, 3, pool_channels, features),
    'b': jnp.zeros((features,), jnp.float32),
    'bn_k': init_bn(features),
  }
  if context_channels is not None:
    params['z'] = _zeros(2, 2, context_channels, features)
    params['bn_z'] = init_bn(features)
  return params


def feature_drive(
  params: Params,
  running: Stats,
  p_prev: jax.Array,
  c_prev: jax.Array | None,
  train: bool,
  impl: str,
  epsilon: float,
) -> tuple[jax.Array, Stats]:
  """Feed-forward drive of eq. (5): `BN(k * p_{l-1} + b) [+ BN(z * c_{l-1})]`, all frames at once.

  Args:
    params: see `init_feature_units`.
    running: `{'bn_k': ..., ['bn_z': ...]}`, leaves `[time, F]`.
    p_prev: `[batch, time, H, W, N]` pooling units of the layer below.
    c_prev: `[batch, time, H - 1, W - 1, A]` context units of the previous context layer, or
      None (first context layer; MSTNN).

  Returns:
    `(u [batch, time, H - 2, W - 2, F], batch stats)`.
  """
  if ('z' in params) != (c_prev is not None):
    raise ValueError(
      'mstrnn_jax/layers.py: feature units need previous context units exactly when '
      "their params have a 'z' kernel (context layers 2, 3, ...)."
    )
  u, stats_k = batch_norm_over_time(
    params['bn_k'],
    running['bn_k'],
    conv_frames(p_prev, params['k'], 1, 'VALID', impl) + params['b'],
    train,
    epsilon,
  )
  stats = {'bn_k': stats_k}
  if c_prev is not None:
    u_z, stats['bn_z'] = batch_norm_over_time(
      params['bn_z'],
      running['bn_z'],
      conv_frames(c_prev, params['z'], 1, 'VALID', impl),
      train,
      epsilon,
    )
    u = u + u_z
  return u, stats


def feature_units(
  params: Params,
  running: Stats,
  p_prev: jax.Array,
  c_prev: jax.Array | None,
  fhat_initial: jax.Array,
  inv_tau: jax.Array,
  train: bool,
  impl: str,
  leaky_scan: str,
  epsilon: float,
) -> tuple[jax.Array, jax.Array, Stats]:
  """Eq. (5) over a sequence: hoisted drive, then the linear leaky recurrence.

  Args:
    fhat_initial: `[batch, H - 2, W - 2, F]` state before the first step (zeros for a new video).

  Returns:
    `(fhat [batch, time, H - 2, W - 2, F], fhat at the last step, batch stats)`; the feature
    units' activation, eq. (6), is `relu(fhat)` (the caller fuses it with the pooling).
  """
  u, stats = feature_drive(params, running, p_prev, c_prev, train, impl, epsilon)
  fhat = scan.leaky_integrate(u, inv_tau, fhat_initial, leaky_scan)
  return fhat, fhat[:, -1], stats


# ----------------------------------------------------------------------------- context units
class ContextCarry(NamedTuple):
  """Context units' internal state `chat_{t-1}`: `[batch, H, W, B]` (c_{t-1} = relu of it)."""

  chat: jax.Array


def init_context_units(features: int, contexts: int) -> Params:
  """Context units: `k_tilde` [2, 2, M, B], `b_tilde` [B], `bn_k_tilde`, `z_tilde` [3, 3, B, B], `bn_z_tilde`."""
  return {
    'k_tilde': _zeros(2, 2, features, contexts),
    'b_tilde': jnp.zeros((contexts,), jnp.float32),
    'bn_k_tilde': init_bn(contexts),
    'z_tilde': _zeros(3, 3, contexts, contexts),
    'bn_z_tilde': init_bn(contexts),
  }


def context_drive(
  params: Params, running: Stats, p: jax.Array, train: bool, impl: str, epsilon: float
) -> tuple[jax.Array, Stats]:
  """Feed-forward term of eq. (7), `BN(k~ * p_l + b~)`, over all frames.

  Args:
    p: `[batch, time, H, W, M]` pooling units of this layer; running: `{'bn_k_tilde': [time, B]}`.

  Returns:
    `([batch, time, H - 1, W - 1, B], {'bn_k_tilde': batch stats})`.
  """
  h = conv_frames(p, params['k_tilde'], 1, 'VALID', impl) + params['b_tilde']
  a, stats = batch_norm_over_time(params['bn_k_tilde'], running['bn_k_tilde'], h, train, epsilon)
  return a, {'bn_k_tilde': stats}


def context_step(
  params: Params,
  running_t: Stats,
  carry: ContextCarry,
  drive_t: jax.Array,
  inv_tau: jax.Array,
  train: bool,
  impl: str,
  epsilon: float,
) -> tuple[ContextCarry, tuple[jax.Array, Stats]]:
  """One step of eq. (7) given its feed-forward term: the only work inside the time scan.

  Args:
    params: context-unit params (uses `z_tilde`, `bn_z_tilde`).
    running_t: `{'mean': [B], 'var': [B]}` stored statistics of `bn_z_tilde` at this step.
    carry: `chat_{t-1}` `[batch, H, W, B]`.
    drive_t: `BN(k~ * p_l^t + b~)` `[batch, H, W, B]`.

  Returns:
    `(chat_t, (c_t [batch, H, W, B], bn_z_tilde batch stats {'mean'/'var': [B]}))`.
  """
  c_prev = jax.nn.relu(carry.chat)
  recurrent = ops.conv2d(c_prev, params['z_tilde'], 1, 'SAME', impl)
  recurrent, stats = batch_norm(params['bn_z_tilde'], running_t, recurrent, train, epsilon)
  chat = scan.leaky_update(carry.chat, drive_t + recurrent, inv_tau)
  return ContextCarry(chat), (jax.nn.relu(chat), stats)


def context_units(
  params: Params,
  running: Stats,
  p: jax.Array,
  carry: ContextCarry,
  inv_tau: jax.Array,
  train: bool,
  impl: str,
  remat: bool,
  epsilon: float,
) -> tuple[jax.Array, ContextCarry, Stats]:
  """Eq. (7) over a sequence: hoisted drive + a scan of `context_step`.

  Args:
    p: `[batch, time, H, W, M]` pooling units; running: `{'bn_k_tilde', 'bn_z_tilde'}` `[time, B]`.
    carry: state before the first step (`chat` zeros for a new video).

  Returns:
    `(c [batch, time, H - 1, W - 1, B], carry after the last step,
    batch stats {'bn_k_tilde', 'bn_z_tilde'})`.
  """
  drive, stats = context_drive(params, running, p, train, impl, epsilon)
  step = functools.partial(
    context_step, params, inv_tau=inv_tau, train=train, impl=impl, epsilon=epsilon
  )

  def context_scan_step(carry: ContextCarry, xs: tuple[Stats, jax.Array]):
    running_t, drive_t = xs
    return step(running_t, carry, drive_t)

  carry, (c, stats['bn_z_tilde']) = scan.time_scan(
    context_scan_step, carry, (running['bn_z_tilde'], scan.batch_to_time_major(drive)), remat
  )
  return scan.time_to_batch_major(c), carry, stats


# ----------------------------------------------------------------------------- LSTM (LRCN)
class LSTMCarry(NamedTuple):
  """LSTM state: hidden `h` and cell `c`, both `[batch, units]`."""

  h: jax.Array
  c: jax.Array


def init_lstm(in_features: int, units: int) -> Params:
  """LSTM with recurrent BN: `w_x` [in, 4U], `w_h` [U, 4U], `b` [4U] (forget slice = 1),
  `bn_x`, `bn_h` (over 4U), `bn_c` (over U). Gate order: input, forget, cell, output."""
  b = jnp.zeros((4 * units,), jnp.float32).at[units : 2 * units].set(LSTM_FORGET_BIAS_INIT)
  return {
    'w_x': _zeros(in_features, 4 * units),
    'w_h': _zeros(units, 4 * units),
    'b': b,
    'bn_x': init_bn(4 * units),
    'bn_h': init_bn(4 * units),
    'bn_c': init_bn(units),
  }


def lstm_drive(
  params: Params, running: Stats, x: jax.Array, train: bool, epsilon: float
) -> tuple[jax.Array, Stats]:
  """Input path `BN(x w_x)` of the BN-LSTM (Cooijmans et al.), hoisted over all steps.

  Args:
    x: `[batch, time, in]`; running: `{'bn_x': [time, 4U]}`.

  Returns:
    `([batch, time, 4U], {'bn_x': batch stats})`.
  """
  drive, stats = batch_norm_over_time(
    params['bn_x'], running['bn_x'], x @ params['w_x'], train, epsilon
  )
  return drive, {'bn_x': stats}


def lstm_step(
  params: Params,
  running_t: Stats,
  carry: LSTMCarry,
  drive_t: jax.Array,
  train: bool,
  epsilon: float,
) -> tuple[LSTMCarry, tuple[jax.Array, Stats]]:
  """One BN-LSTM step: gates = drive_t + BN(h w_h) + b; h = o * tanh(BN(c)).

  Args:
    running_t: `{'bn_h': {'mean'/'var': [4U]}, 'bn_c': {...: [U]}}` at this step.
    carry: `(h, c)` `[batch, U]` each; drive_t: `[batch, 4U]`.

  Returns:
    `(carry, (h_t [batch, U], batch stats {'bn_h', 'bn_c'}))`.
  """
  recurrent, stats_h = batch_norm(
    params['bn_h'], running_t['bn_h'], carry.h @ params['w_h'], train, epsilon
  )
  gates = drive_t + recurrent + params['b']
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
  c_normed, stats_c = batch_norm(params['bn_c'], running_t['bn_c'], c, train, epsilon)
  h = jax.nn.sigmoid(o) * jnp.tanh(c_normed)
  return LSTMCarry(h, c), (h, {'bn_h': stats_h, 'bn_c': stats_c})


def lstm(
  params: Params,
  running: Stats,
  x: jax.Array,
  carry: LSTMCarry,
  train: bool,
  remat: bool,
  epsilon: float,
) -> tuple[jax.Array, LSTMCarry, Stats]:
  """BN-LSTM over a sequence.

  Args:
    x: `[batch, time, in]`; running: `{'bn_x', 'bn_h', 'bn_c'}` leaves `[time, ...]`.
    carry: state before the first step (zeros for a new video).

  Returns:
    `(h [batch, time, U], carry after the last step, batch stats {'bn_x', 'bn_h', 'bn_c'})`.
  """
  chex.assert_rank(x, 3)
  drive, stats = lstm_drive(params, running, x, train, epsilon)
  step = functools.partial(lstm_step, params, train=train, epsilon=epsilon)

  def lstm_scan_step(carry: LSTMCarry, xs: tuple[Stats, jax.Array]):
    running_t, drive_t = xs
    return step(running_t, carry, drive_t)

  running_hc = {'bn_h': running['bn_h'], 'bn_c': running['bn_c']}
  carry, (h, stats_hc) = scan.time_scan(
    lstm_scan_step, carry, (running_hc, scan.batch_to_time_major(drive)), remat
  )
  stats.update(stats_hc)
  return scan.time_to_batch_major(h), carry, stats
