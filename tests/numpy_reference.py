"""Independent float64 NumPy reference of the MSTRNN, written from eqs. (5)-(8) of the paper.

Plain loops over time steps and output pixels; no code shared with `mstrnn_jax` except the
parameter names. Used by test_layers.py and test_models.py.
"""

from __future__ import annotations

import numpy as np


def conv(x, w, padding=0, stride=1):
  """x [B, H, W, Ci], w [kh, kw, Ci, Co] -> [B, Ho, Wo, Co]; cross-correlation, loops over pixels."""
  x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  kh, kw = w.shape[:2]
  ho = (x.shape[1] - kh) // stride + 1
  wo = (x.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
  for i in range(ho):
    for j in range(wo):
      window = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
      out[:, i, j, :] = np.tensordot(window, w, axes=([1, 2, 3], [0, 1, 2]))
  return out


def maxpool(x):
  """2x2 stride 2, floor."""
  ho, wo = x.shape[1] // 2, x.shape[2] // 2
  out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
  for i in range(ho):
    for j in range(wo):
      out[:, i, j, :] = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :].max(axis=(1, 2))
  return out


def relu(x):
  return np.maximum(x, 0.0)


class BN:
  """Per-time-step BN, eqs. (1)-(4): batch statistics (train) or stored ones (eval)."""

  def __init__(self, train, eps):
    self.train, self.eps = train, eps
    self.seen = {}  # name -> list of (mean, var) per step (train)

  def __call__(self, name, x, params, stats, t):
    gamma, beta = np.asarray(params[name]['gamma']), np.asarray(params[name]['beta'])
    if self.train:
      axes = tuple(range(x.ndim - 1))
      mean = x.mean(axis=axes)
      var = ((x - mean) ** 2).mean(axis=axes)
      self.seen.setdefault(name, []).append((mean, var))
    else:
      row = min(t, np.asarray(stats[name]['mean']).shape[0] - 1)
      mean, var = np.asarray(stats[name]['mean'])[row], np.asarray(stats[name]['var'])[row]
    return gamma * (x - mean) / np.sqrt(var + self.eps) + beta


def context_layer(params, stats, p_prev_seq, c_prev_seq, tau, train, eps):
  """One context layer over time, eqs. (5)-(7), zero initial states.

  p_prev_seq: list over t of [B, H, W, N]; c_prev_seq: list of [B, H-1, W-1, A] or None.
  Returns (feature list, pool list, context list, BN object with the per-step batch stats).
  """
  P = {k: np.asarray(v) for k, v in params.items() if not k.startswith('bn_')}
  bn = BN(train, eps)
  bn_params = {k: v for k, v in params.items() if k.startswith('bn_')}
  fhat = chat = None
  feats, pools, ctxs = [], [], []
  for t, p_prev in enumerate(p_prev_seq):
    u = bn('bn_k', conv(p_prev, P['k']) + P['b'], bn_params, stats, t)
    if c_prev_seq is not None:
      u = u + bn('bn_z', conv(c_prev_seq[t], P['z']), bn_params, stats, t)
    fhat = u / tau if fhat is None else (1 - 1 / tau) * fhat + u / tau
    f = relu(fhat)
    p = maxpool(f)
    ff = bn('bn_k_tilde', conv(p, P['k_tilde']) + P['b_tilde'], bn_params, stats, t)
    if chat is None:
      chat = np.zeros_like(ff)
    rec = bn('bn_z_tilde', conv(relu(chat), P['z_tilde'], padding=1), bn_params, stats, t)
    chat = (1 - 1 / tau) * chat + (ff + rec) / tau
    feats.append(f)
    pools.append(p)
    ctxs.append(relu(chat))
  return feats, pools, ctxs, bn


def mstrnn(params, stats, videos, taus, conv0_stride, train, eps):
  """Full MSTRNN: conv0 -> pool -> context layers -> FC (eq. 8) -> FC -> heads, per time step.

  Returns (logits {head: [B, T, classes]}, activations {name: [B, T, ...]},
  batch stats {layer: {bn: {'mean': [T, C], 'var': [T, C]}}} (train only)).
  """
  b, t_len = videos.shape[:2]
  acts = {}
  batch_stats = {}
  bn0 = BN(train, eps)
  conv0, pool0 = [], []
  for t in range(t_len):
    h = conv(videos[:, t], np.asarray(params['conv0']['w']), stride=conv0_stride) + np.asarray(
      params['conv0']['b']
    )
    h = relu(bn0('bn', h, params['conv0'], stats.get('conv0'), t))
    conv0.append(h)
    pool0.append(maxpool(h))
  acts['conv0'], acts['pool0'] = conv0, pool0
  batch_stats['conv0'] = bn0.seen
  p_seq, c_seq = pool0, None
  for i, tau in enumerate(taus, start=1):
    name = f'context_layer{i}'
    feats, p_seq, c_seq, bn = context_layer(
      params[name], stats.get(name), p_seq, c_seq, tau, train, eps
    )
    acts[f'feature{i}'], acts[f'pool{i}'], acts[f'context{i}'] = feats, p_seq, c_seq
    batch_stats[name] = bn.seen
  h_seq = [c.reshape(b, -1) for c in c_seq]
  i = 1
  while f'fc{i}' in params:
    bn = BN(train, eps)
    fc = params[f'fc{i}']
    h_seq = [
      1.7159
      * np.tanh(
        2.0
        / 3.0
        * bn('bn', h @ np.asarray(fc['w']) + np.asarray(fc['b']), fc, stats.get(f'fc{i}'), t)
      )
      for t, h in enumerate(h_seq)
    ]
    acts[f'fc{i}'] = h_seq
    batch_stats[f'fc{i}'] = bn.seen
    i += 1
  logits = {
    name: np.stack([h @ np.asarray(hp['w']) + np.asarray(hp['b']) for h in h_seq], axis=1)
    for name, hp in params['heads'].items()
  }
  acts = {k: np.stack(v, axis=1) for k, v in acts.items()}
  stacked = {
    layer: {
      bn_name: {'mean': np.stack([m for m, _ in seq]), 'var': np.stack([v for _, v in seq])}
      for bn_name, seq in per_bn.items()
    }
    for layer, per_bn in batch_stats.items()
  }
  return logits, acts, stacked
