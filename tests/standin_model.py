"""A tiny stand-in model with the engine's ModelFns interface (for engine tests).

Per frame: channel means -> linear -> batch-norm-like centring (batch mean in training, a running
mean in evaluation, so batch statistics matter) -> tanh -> leaky integration with time constant
taus[0] -> one linear read-out per head.
"""

import jax
import jax.numpy as jnp

from mstrnn_jax import train

FEATURES = 6


def make(heads=(('a', 3), ('b', 2)), input_size=8) -> train.ModelFns:
  def init(key):
    k1, *hk = jax.random.split(key, 1 + len(heads))
    # No bias before the centring: its gradient would be rounding noise that Adam amplifies.
    params = {
      'proj': {'w': jax.random.normal(k1, (3, FEATURES)) * 2.0},
      'heads': {
        name: {'w': jax.random.normal(k, (FEATURES, n)) * 0.3, 'b': jnp.zeros((n,))}
        for k, (name, n) in zip(hk, heads)
      },
    }
    return {'params': params, 'batch_stats': {'proj': {'mean': jnp.zeros((FEATURES,))}}}

  def apply(params, batch_stats, videos, taus, train_mode):
    h = videos.mean(axis=(2, 3)) @ params['proj']['w']  # [B, T, F]
    mean = h.mean(axis=(0, 1)) if train_mode else batch_stats['proj']['mean']
    h = jnp.tanh(h - mean)

    def leak(c, x):
      c = c + (x - c) / taus[0]
      return c, c

    _, u = jax.lax.scan(leak, jnp.zeros(h.shape[::2]), jnp.swapaxes(h, 0, 1))
    u = jnp.swapaxes(u, 0, 1)
    logits = {
      name: u @ params['heads'][name]['w'] + params['heads'][name]['b'] for name, _ in heads
    }
    new_stats = (
      {'proj': {'mean': 0.9 * batch_stats['proj']['mean'] + 0.1 * mean}}
      if train_mode
      else batch_stats
    )
    return logits, new_stats

  def batch_statistics(params, batch_stats, videos, taus):
    del batch_stats, taus
    return {'proj': {'mean': (videos.mean(axis=(2, 3)) @ params['proj']['w']).mean(axis=(0, 1))}}

  return train.ModelFns(
    init=init,
    apply=apply,
    heads=tuple(heads),
    input_size=input_size,
    n_taus=1,
    batch_statistics=batch_statistics,
  )
