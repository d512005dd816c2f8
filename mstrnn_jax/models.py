"""MSTRNN, MSTNN and LRCN as pure functions: `init`, `apply`, `initial_state`, `step`.

    variables = init(cfg, rng)                       # {'params': ..., 'batch_stats': ...}
    out = apply(cfg, params, batch_stats, videos, taus, train, return_activations=False)
    state = initial_state(cfg, params, batch_size)
    state, logits_t = step(cfg, params, batch_stats, state, frame, taus, t)

`videos` are float32 `[batch, time, H, W, 3]` in [0, 1] (the train step crops and casts the
uint8 data first). `taus` is a float array `[len(cfg.taus)]` (one per context / leaky layer;
`[0]` for LRCN): an input, not a constant, so one compiled program can be `vmap`ped over many
(tau1, tau2) pairs.

Architectures (Fig. 3, Sec. III.A):
* MSTRNN: conv0 -> pool0 -> context layers 1..L (eqs. 5-7) -> FC -> FC -> softmax heads.
  The first FC layer reads the top context layer's context units (see
  `configs.fc_input_layers` for why, and for the `fc_input` ablations).
* MSTNN: conv0 -> pool0 -> [leaky conv (eq. 5 without z) -> pool] x L -> FC -> FC -> heads.
* LRCN: conv0 -> pool0 -> [conv -> pool] x L -> FC -> BN-LSTM 256 -> BN-LSTM 256 -> heads.
Every feed-forward layer has a per-time-step BN before its activation (Sec. II.A); FC layers
use eq. (8); heads are linear softmax layers and `apply` returns their logits at every step.

One forward function per model, `_forward`, runs a `[batch, time, ...]` chunk from a given
recurrent state and returns the state after it. `apply` with `cfg.time_layout == 'hoisted'` calls it
once on the whole video (feed-forward convs over all frames at once, only recurrences in
scans); `cfg.time_layout == 'all_in_scan'` scans `_frame_step` (the same `_forward` on one frame)
over time, the straightforward baseline; `step` is `_frame_step` in eval mode for streaming.
All three give the same numbers (tested).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mstrnn_jax import configs
from mstrnn_jax import layers
from mstrnn_jax import ops
from mstrnn_jax import scan
from mstrnn_jax.configs import ModelConfig

Params = dict
Stats = dict


class ModelState(NamedTuple):
  """Recurrent state carried between frames (empty tuples for parts a model lacks).

  Attributes:
    feature: per MSTRNN context layer / MSTNN leaky conv layer, `fhat` `[batch, H, W, F]`.
    context: per MSTRNN context layer, `layers.ContextCarry` (`chat` `[batch, H, W, B]`).
    lstm: per LRCN LSTM layer, `layers.LSTMCarry` (`h`, `c` `[batch, units]`).
  """

  feature: tuple[jax.Array, ...]
  context: tuple[layers.ContextCarry, ...]
  lstm: tuple[layers.LSTMCarry, ...]


class ModelOutput(NamedTuple):
  """Output of `apply`.

  Attributes:
    logits: dict head -> `[batch, time, classes]`.
    batch_stats: running per-step BN statistics, updated (train=True) or unchanged.
    activations: dict layer -> `[batch, time, ...]` (see `activation_names`) or None.
  """

  logits: dict[str, jax.Array]
  batch_stats: Stats
  activations: dict[str, jax.Array] | None


def activation_names(cfg: ModelConfig) -> tuple[str, ...]:
  """Keys of `apply(..., return_activations=True).activations`, in forward order.

  MSTRNN: conv0, pool0, then per context layer l: feature{l} (relu of feature units),
  pool{l}, context{l} (context units c); then fc1, fc2. Analysis reads 'context2'.
  MSTNN: conv0, pool0, conv{l} (relu of the leaky units), pool{l}, fc1, fc2 ('conv2').
  LRCN: conv0, pool0, conv{l}, pool{l}, fc1, lstm1, lstm2 ('lstm2').
  Each has shape `[batch, time] + configs.layer_shapes(cfg)[name]`.
  """
  return tuple(configs.layer_shapes(cfg))


# ----------------------------------------------------------------------------- init
def _bn_stats_like(params: Params, bn_steps: int) -> Stats:
  """Running-statistics tree mirroring every BN (`{'gamma', 'beta'}`) in `params`."""
  stats = {}
  for name, value in params.items():
    if isinstance(value, dict) and set(value) == {'gamma', 'beta'}:
      stats[name] = layers.init_bn_stats(bn_steps, value['gamma'].shape[0])
    elif isinstance(value, dict):
      sub = _bn_stats_like(value, bn_steps)
      if sub:
        stats[name] = sub
  return stats


@functools.partial(jax.jit, static_argnums=0)
def init(cfg: ModelConfig, rng: jax.Array) -> dict[str, Params]:
  """Initial variables `{'params': ..., 'batch_stats': ...}` (float32). Jitted (cfg static).

  Params (paper names inside each layer): 'conv0' `{w, b, bn}`;
  MSTRNN 'context_layer{l}' `{k, b, bn_k, [z, bn_z], k_tilde, b_tilde, bn_k_tilde, z_tilde,
  bn_z_tilde}`; MSTNN 'conv{l}' `{k, b, bn_k}`; LRCN 'conv{l}' `{w, b, bn}`, 'lstm{l}'
  `{w_x, w_h, b, bn_x, bn_h, bn_c}`; 'fc{i}' `{w, b, bn}`; 'heads' `{name: {w, b}}`.
  batch_stats mirror every BN with `{'mean', 'var'}` `[cfg.bn_steps, C]`.
  """
  shapes = configs.layer_shapes(cfg)
  params: Params = {'conv0': layers.init_conv(3, 3, cfg.conv0_width)}
  channels = cfg.conv0_width
  if cfg.model == 'mstrnn':
    previous_context = None
    for i, (f, c) in enumerate(zip(cfg.feature_widths, cfg.context_widths), start=1):
      layer = layers.init_feature_units(channels, f, previous_context)
      layer.update(layers.init_context_units(f, c))
      params[f'context_layer{i}'] = layer
      channels, previous_context = f, c
  elif cfg.model == 'mstnn':
    for i, f in enumerate(cfg.feature_widths, start=1):
      params[f'conv{i}'] = layers.init_feature_units(channels, f, None)
      channels = f
  else:
    for i, f in enumerate(cfg.feature_widths, start=1):
      params[f'conv{i}'] = layers.init_conv(3, channels, f)
      channels = f
  width = sum(math.prod(shapes[name]) for name in configs.fc_input_layers(cfg))
  for i, w in enumerate(cfg.fc_widths, start=1):
    params[f'fc{i}'] = layers.init_dense(width, w)
    width = w
  for i, w in enumerate(cfg.lstm_widths, start=1):
    params[f'lstm{i}'] = layers.init_lstm(width, w)
    width = w
  params['heads'] = {name: layers.init_dense(width, n, with_bn=False) for name, n in cfg.heads}
  params = layers.init_kernels(params, rng)
  return {'params': params, 'batch_stats': _bn_stats_like(params, cfg.bn_steps)}


def initial_state(cfg: ModelConfig, params: Params, batch_size: int) -> ModelState:
  """Zero recurrent state for `batch_size` new videos (dtype of `params`)."""
  dtype = params['conv0']['w'].dtype
  shapes = configs.layer_shapes(cfg)
  zeros = lambda name: jnp.zeros((batch_size,) + shapes[name], dtype)
  n = cfg.num_layers
  if cfg.model == 'mstrnn':
    return ModelState(
      tuple(zeros(f'feature{i}') for i in range(1, n + 1)),
      tuple(layers.ContextCarry(zeros(f'context{i}')) for i in range(1, n + 1)),
      (),
    )
  if cfg.model == 'mstnn':
    return ModelState(tuple(zeros(f'conv{i}') for i in range(1, n + 1)), (), ())
  return ModelState(
    (),
    (),
    tuple(
      layers.LSTMCarry(zeros(f'lstm{i}'), zeros(f'lstm{i}'))
      for i in range(1, len(cfg.lstm_widths) + 1)
    ),
  )


# ----------------------------------------------------------------------------- forward
def _forward(
  cfg: ModelConfig,
  params: Params,
  running: Stats,
  videos: jax.Array,
  inv_taus: jax.Array,
  state: ModelState,
  train: bool,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], Stats, ModelState]:
  """One model over a chunk of frames starting from `state`.

  Args:
    running: stored BN statistics for these steps, leaves `[time, C]`.
    videos: `[batch, time, H, W, 3]`.
    inv_taus: `[num_layers]` (1 / tau per temporal layer; `[0]` for LRCN).

  Returns:
    `(logits {head: [batch, time, classes]}, activations {name: [batch, time, ...]},
    batch stats (leaves [time, C]), state after the last frame)`.
  """
  impl = ops.resolve_conv_impl(cfg.conv_impl)
  eps = cfg.bn_epsilon
  acts: dict[str, jax.Array] = {}
  stats: Stats = {}
  # Every conv / feature layer: activation relu(h), pooling relu(maxpool(h)) == maxpool(relu(h)).
  h, stats['conv0'] = layers.conv_bn(
    params['conv0'], running['conv0'], videos, cfg.conv0_stride, train, impl, eps
  )
  acts['conv0'] = jax.nn.relu(h)
  p = acts['pool0'] = ops.relu_max_pool_2x2(h)
  features, contexts, lstms = [], [], []
  if cfg.model == 'mstrnn':
    c = None
    for i in range(1, cfg.num_layers + 1):
      name = f'context_layer{i}'
      lp, lr = params[name], running[name]
      fhats, fhat, st_f = layers.feature_units(
        lp, lr, p, c, state.feature[i - 1], inv_taus[i - 1], train, impl, cfg.leaky_scan, eps
      )
      acts[f'feature{i}'] = jax.nn.relu(fhats)
      p = acts[f'pool{i}'] = ops.relu_max_pool_2x2(fhats)
      c, carry, st_c = layers.context_units(
        lp, lr, p, state.context[i - 1], inv_taus[i - 1], train, impl, cfg.remat, eps
      )
      acts[f'context{i}'] = c
      stats[name] = {**st_f, **st_c}
      features.append(fhat)
      contexts.append(carry)
  elif cfg.model == 'mstnn':
    for i in range(1, cfg.num_layers + 1):
      name = f'conv{i}'
      fhats, fhat, stats[name] = layers.feature_units(
        params[name],
        running[name],
        p,
        None,
        state.feature[i - 1],
        inv_taus[i - 1],
        train,
        impl,
        cfg.leaky_scan,
        eps,
      )
      acts[name] = jax.nn.relu(fhats)
      p = acts[f'pool{i}'] = ops.relu_max_pool_2x2(fhats)
      features.append(fhat)
  else:
    for i in range(1, cfg.num_layers + 1):
      name = f'conv{i}'
      h, stats[name] = layers.conv_bn(params[name], running[name], p, 1, train, impl, eps)
      acts[name] = jax.nn.relu(h)
      p = acts[f'pool{i}'] = ops.relu_max_pool_2x2(h)
  flat = [acts[n].reshape(acts[n].shape[:2] + (-1,)) for n in configs.fc_input_layers(cfg)]
  h = flat[0] if len(flat) == 1 else jnp.concatenate(flat, axis=-1)
  for i in range(1, len(cfg.fc_widths) + 1):
    name = f'fc{i}'
    h, stats[name] = layers.fully_connected(params[name], running[name], h, train, eps)
    acts[name] = h
  for i in range(1, len(cfg.lstm_widths) + 1):
    name = f'lstm{i}'
    h, carry, stats[name] = layers.lstm(
      params[name], running[name], h, state.lstm[i - 1], train, cfg.remat, eps
    )
    acts[name] = h
    lstms.append(carry)
  logits = {name: layers.readout(params['heads'][name], h) for name in cfg.head_names}
  return logits, acts, stats, ModelState(tuple(features), tuple(contexts), tuple(lstms))


def _frame_step(
  cfg: ModelConfig,
  params: Params,
  running_t: Stats,
  state: ModelState,
  frame: jax.Array,
  inv_taus: jax.Array,
  train: bool,
):
  """`_forward` on one frame `[batch, H, W, 3]` with BN statistics `running_t` (leaves `[C]`).

  Returns `(state, (logits, activations, batch stats))` with per-frame leaves (no time axis).
  """
  one_step = lambda tree: jax.tree.map(lambda x: x[None], tree)
  logits, acts, stats, state = _forward(
    cfg, params, one_step(running_t), frame[:, None], inv_taus, state, train
  )
  squeeze = lambda tree, axis: jax.tree.map(lambda x: jnp.squeeze(x, axis), tree)
  return state, (squeeze(logits, 1), squeeze(acts, 1), squeeze(stats, 0))


def _check_taus(cfg: ModelConfig, taus: jax.Array) -> jax.Array:
  expected = 0 if cfg.model == 'lrcn' else cfg.num_layers
  taus = jnp.asarray(taus)
  if taus.shape != (expected,):
    raise ValueError(
      f'mstrnn_jax/models.py: {cfg.model} takes taus of shape ({expected},) '
      f'(one per temporal layer, e.g. {cfg.taus}), got {taus.shape}.'
    )
  return 1.0 / taus


def _update_running(batch_stats: Stats, batch: Stats, momentum: float) -> Stats:
  """`new[s] = momentum * old[s] + (1 - momentum) * batch[s]` for the steps `s < time` seen."""

  def update(old, new):
    old, t = jnp.asarray(old), new.shape[0]
    return old.at[:t].set(momentum * old[:t] + (1.0 - momentum) * new.astype(old.dtype))

  return jax.tree.map(update, batch_stats, batch)


def apply(
  cfg: ModelConfig,
  params: Params,
  batch_stats: Stats,
  videos: jax.Array,
  taus: jax.Array,
  train: bool,
  return_activations: bool = False,
) -> ModelOutput:
  """Full-sequence forward pass.

  Args:
    cfg: model config (static).
    params, batch_stats: from `init` (or training).
    videos: float `[batch, time, H, W, 3]`, values in [0, 1], `H == W == cfg.input_size`.
    taus: float `[len(cfg.taus)]` time constants (vmappable).
    train: batch statistics per step and updated running statistics (requires
      `time <= cfg.bn_steps`), or stored statistics (any length; steps past `bn_steps` reuse
      the last stored step).
    return_activations: also return every layer's activations (`activation_names`).

  Returns:
    `ModelOutput(logits {head: [batch, time, classes]}, batch_stats, activations | None)`.
  """
  chex.assert_rank(videos, 5)
  b, t, h, w, ch = videos.shape
  if (h, w, ch) != (cfg.input_size, cfg.input_size, 3):
    raise ValueError(
      f'mstrnn_jax/models.py: videos must be [batch, time, {cfg.input_size}, '
      f'{cfg.input_size}, 3] for this config, got {videos.shape}.'
    )
  if train and t > cfg.bn_steps:
    raise ValueError(
      f'mstrnn_jax/models.py: training on {t} time steps but the config stores BN '
      f'statistics for only bn_steps={cfg.bn_steps}; set bn_steps >= the padded '
      'video length in configs.derive_config / get_model_config.'
    )
  inv_taus = _check_taus(cfg, taus)
  running = layers.stats_at_steps_tree(batch_stats, jnp.arange(t))
  state = initial_state(cfg, params, b)
  if cfg.time_layout == 'hoisted':
    logits, acts, stats, _ = _forward(cfg, params, running, videos, inv_taus, state, train)
  else:
    frame_step = functools.partial(_frame_step, cfg, params, inv_taus=inv_taus, train=train)

    def all_in_scan_step(state: ModelState, xs: tuple[Stats, jax.Array]):
      running_t, frame = xs
      return frame_step(running_t, state, frame)

    _, (logits, acts, stats) = scan.time_scan(
      all_in_scan_step, state, (running, scan.batch_to_time_major(videos)), cfg.remat
    )
    logits = jax.tree.map(scan.time_to_batch_major, logits)
    acts = jax.tree.map(scan.time_to_batch_major, acts)
  new_stats = _update_running(batch_stats, stats, cfg.bn_momentum) if train else batch_stats
  return ModelOutput(logits, new_stats, acts if return_activations else None)


def step(
  cfg: ModelConfig,
  params: Params,
  batch_stats: Stats,
  state: ModelState,
  frame: jax.Array,
  taus: jax.Array,
  t: Any,
) -> tuple[ModelState, dict[str, jax.Array]]:
  """Streaming: one frame in, logits out, state carried (eval mode, stored BN statistics).

  Args:
    state: from `initial_state` or the previous `step`.
    frame: float `[batch, H, W, 3]` in [0, 1].
    taus: `[len(cfg.taus)]`.
    t: int, this frame's time index (selects the per-step BN statistics).

  Returns:
    `(state, logits {head: [batch, classes]})`; over a whole video equal to
    `apply(..., train=False).logits[:, t]`.
  """
  chex.assert_rank(frame, 4)
  inv_taus = _check_taus(cfg, taus)
  running_t = layers.stats_at_steps_tree(batch_stats, jnp.asarray(t))
  state, (logits, _, _) = _frame_step(cfg, params, running_t, state, frame, inv_taus, train=False)
  return state, logits


# ----------------------------------------------------------------------------- summary
# An MSTRNN context layer's feature-unit parameters; the others are its context units'.
FEATURE_KEYS = ('k', 'b', 'bn_k', 'z', 'bn_z')


def _count(tree: Any) -> int:
  return sum(int(math.prod(x.shape)) for x in jax.tree.leaves(tree))


def layer_parameter_counts(cfg: ModelConfig) -> list[tuple[str, tuple[int, ...], int]]:
  """`[(layer, per-frame output shape, parameters)]` in forward order, heads last.

  MSTRNN context layer l is split into its feature units (`feature{l}`: k, b, [z], their BNs)
  and context units (`context{l}`: k_tilde, b_tilde, z_tilde, their BNs). Pools have none.
  """
  params = jax.eval_shape(lambda: init(cfg, jax.random.PRNGKey(0)))['params']
  rows = []
  for name, shape in configs.layer_shapes(cfg).items():
    if name.startswith(('feature', 'context')) and cfg.model == 'mstrnn':
      layer = params['context_layer' + name.removeprefix('feature').removeprefix('context')]
      feature = name.startswith('feature')
      count = _count({k: v for k, v in layer.items() if (k in FEATURE_KEYS) == feature})
    else:
      count = _count(params.get(name, {}))
    rows.append((name, shape, count))
  for head, n in cfg.heads:
    rows.append((f'head:{head}', (n,), _count(params['heads'][head])))
  return rows


def summary_table(cfgs: tuple[ModelConfig, ...], title: str = '') -> str:
  """Text table: every layer's output shape and parameter count per model, totals next to
  Table II's figure (which the paper gives for CL1AD)."""
  lines = [title] if title else []
  for cfg in cfgs:
    rows = layer_parameter_counts(cfg)
    total = sum(count for _, _, count in rows)
    paper = configs.TABLE_II_PARAMS[cfg.model]
    lines.append(
      f'{cfg.model.upper()}  (input {cfg.input_size}x{cfg.input_size}x3, conv0 stride '
      f'{cfg.conv0_stride}, taus {cfg.taus}, heads {dict(cfg.heads)})'
    )
    lines.append(f'  {"layer":<12} {"output [H, W, C] per frame":<28} {"parameters":>12}')
    for name, shape, count in rows:
      lines.append(f'  {name:<12} {str(list(shape)):<28} {count:>12,}')
    lines.append(
      f'  {"total":<12} {"":<28} {total:>12,}   Table II (CL1AD, paper widths): '
      f'{paper / 1e6:.1f}M '
      f'({100 * (total - paper) / paper:+.1f}%)'
    )
    lines.append('')
  return '\n'.join(lines)
