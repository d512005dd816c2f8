"""layers: per-step BN, context layer vs float64 NumPy reference (eqs. 5-7), BN-LSTM step."""

import jax
import jax.numpy as jnp
import numpy as np

import numpy_reference as ref
from mstrnn_jax import layers
from mstrnn_jax import ops

EPS = 1e-5


def test_batch_norm_over_time_uses_per_step_statistics():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((4, 3, 5, 5, 2)) * np.arange(1, 4)[None, :, None, None, None]
  params = {'gamma': np.array([0.5, 2.0]), 'beta': np.array([0.1, -0.3])}
  running = {'mean': rng.standard_normal((3, 2)), 'var': rng.uniform(0.5, 2, (3, 2))}
  with jax.enable_x64(True):
    y, stats = layers.batch_norm_over_time(params, running, jnp.asarray(x), True, EPS)
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(stats['mean'], mean, rtol=1e-12)
    np.testing.assert_allclose(stats['var'], var, rtol=1e-12)
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + EPS) * [
      0.5,
      2.0,
    ] + [0.1, -0.3]
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    y_eval, _ = layers.batch_norm_over_time(params, running, jnp.asarray(x), False, EPS)
    m, v = np.asarray(running['mean']), np.asarray(running['var'])
    want = (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + EPS) * [0.5, 2.0] + [
      0.1,
      -0.3,
    ]
    np.testing.assert_allclose(y_eval, want, rtol=1e-10, atol=1e-12)


def test_training_batch_norm_gradient_equals_autodiff_in_float64():
  # The custom VJP keeps only x and the statistics; its gradient (through y and through the
  # returned mean / var) must equal autodiff of the plain expression, per step and per frame.
  rng = np.random.default_rng(1)
  for shape, axes in (((4, 3, 5, 5, 2), (0, 2, 3)), ((6, 3), (0,)), ((4, 3, 7), (0,))):
    with jax.enable_x64(True):
      x = jnp.asarray(rng.standard_normal(shape) * 3.0 + 1.0)
      gamma, beta = (jnp.asarray(rng.standard_normal(shape[-1:])) for _ in range(2))

      def plain(*a):  # the same forward without the custom gradient, left to XLA's autodiff
        return layers._bn_train_forward(*a, axes, EPS)[0]

      outs = plain(x, gamma, beta)
      weights = [jnp.asarray(rng.standard_normal(o.shape)) for o in outs]

      def loss(fn):
        return lambda *a: sum(jnp.sum(o * w) for o, w in zip(fn(*a), weights))

      got = jax.grad(loss(lambda *a: layers._bn_train(*a, axes, EPS)), (0, 1, 2))(x, gamma, beta)
      want = jax.grad(loss(plain), (0, 1, 2))(x, gamma, beta)
      for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)
      np.testing.assert_allclose(
        layers._bn_train(x, gamma, beta, axes, EPS)[0], outs[0], rtol=1e-14
      )


def test_stats_at_steps_reuses_last_stored_step():
  stats = {'bn': {'mean': jnp.arange(6.0).reshape(3, 2), 'var': jnp.ones((3, 2))}}
  got = layers.stats_at_steps_tree(stats, jnp.arange(5))
  np.testing.assert_array_equal(got['bn']['mean'][:, 0], [0, 2, 4, 4, 4])


def test_context_layer_matches_float64_numpy_reference():
  rng = np.random.default_rng(1)
  b, t, size, n, a, f, c = 3, 4, 10, 2, 3, 3, 4
  params = layers.init_kernels(
    {**layers.init_feature_units(n, f, a), **layers.init_context_units(f, c)}, jax.random.PRNGKey(0)
  )
  params = jax.tree.map(
    lambda x: np.asarray(x, np.float64) + 0.3 * rng.standard_normal(x.shape), params
  )
  stats = {
    name: {
      'mean': rng.standard_normal((3, f if name in ('bn_k', 'bn_z') else c)),
      'var': rng.uniform(0.3, 2.0, (3, f if name in ('bn_k', 'bn_z') else c)),
    }
    for name in ('bn_k', 'bn_z', 'bn_k_tilde', 'bn_z_tilde')
  }
  p_prev = rng.uniform(0, 1, (b, t, size, size, n))
  c_prev = rng.uniform(0, 1, (b, t, size - 1, size - 1, a))
  tau = 3.0

  def layer(params, running, p_prev, c_prev, train):
    running = layers.stats_at_steps_tree(running, jnp.arange(t))
    f0 = jnp.zeros((b, size - 2, size - 2, f))
    fhat, _, st_f = layers.feature_units(
      params, running, p_prev, c_prev, f0, jnp.asarray(1 / tau), train, 'gemm', 'sequential', EPS
    )
    feat = jax.nn.relu(fhat)
    pool = ops.relu_max_pool_2x2(fhat)
    carry = layers.ContextCarry(jnp.zeros((b, pool.shape[2] - 1, pool.shape[3] - 1, c)))
    ctx, _, st_c = layers.context_units(
      params, running, pool, carry, jnp.asarray(1 / tau), train, 'gemm', False, EPS
    )
    return feat, ctx, {**st_f, **st_c}

  with jax.enable_x64(True):
    for train in (True, False):
      feat, ctx, st = jax.jit(layer, static_argnums=4)(params, stats, p_prev, c_prev, train)
      feats_r, _, ctxs_r, bn = ref.context_layer(
        params,
        stats,
        list(p_prev.transpose(1, 0, 2, 3, 4)),
        list(c_prev.transpose(1, 0, 2, 3, 4)),
        tau,
        train,
        EPS,
      )
      np.testing.assert_allclose(feat, np.stack(feats_r, 1), rtol=1e-5, atol=1e-10)
      np.testing.assert_allclose(ctx, np.stack(ctxs_r, 1), rtol=1e-5, atol=1e-10)
      if train:
        for name, seq in bn.seen.items():
          np.testing.assert_allclose(
            st[name]['mean'], np.stack([m for m, _ in seq]), rtol=1e-8, atol=1e-12
          )
          np.testing.assert_allclose(
            st[name]['var'], np.stack([v for _, v in seq]), rtol=1e-8, atol=1e-12
          )


def test_lstm_step_matches_numpy_cooijmans_bn_lstm():
  rng = np.random.default_rng(2)
  units, b = 3, 5
  params = layers.init_kernels(layers.init_lstm(4, units), jax.random.PRNGKey(0))
  params = jax.tree.map(
    lambda x: np.asarray(x, np.float64) + 0.2 * rng.standard_normal(x.shape), params
  )
  h0, c0 = rng.standard_normal((b, units)), rng.standard_normal((b, units))
  drive = rng.standard_normal((b, 4 * units))
  with jax.enable_x64(True):
    carry, (h, _) = layers.lstm_step(
      params, {'bn_h': None, 'bn_c': None}, layers.LSTMCarry(h0, c0), drive, True, EPS
    )

  def bn(x, p):
    return p['gamma'] * (x - x.mean(0)) / np.sqrt(x.var(0) + EPS) + p['beta']

  sig = lambda x: 1 / (1 + np.exp(-x))
  gates = drive + bn(h0 @ params['w_h'], params['bn_h']) + params['b']
  i, f, g, o = np.split(gates, 4, axis=1)
  c = sig(f) * c0 + sig(i) * np.tanh(g)
  np.testing.assert_allclose(carry.c, c, rtol=1e-10)
  np.testing.assert_allclose(h, sig(o) * np.tanh(bn(c, params['bn_c'])), rtol=1e-10)
