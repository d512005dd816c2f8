"""Loss (eq. 9), optimiser chain and the stacked-run train / eval programs.

Every (fold, tau pair) is one *run*.  Parameters, batch statistics, optimiser state, PRNG key
and taus of all runs are stacked on a leading axis ``R``; a train step is ``jax.vmap``-ped over
that axis (so batch norm never mixes runs) and a whole epoch is one ``lax.scan`` over steps
inside one ``jax.jit``: no Python loop over folds, taus, steps or time.

The uint8 dataset is an argument of the jitted programs (replicated on every device); each step
gathers its batch by per-run index tables, crops it on device (random crop for training, centre
crop for evaluation, :mod:`mstrnn_jax.data.pipeline`) and casts it to float32 in [0, 1].

Weight decay is *L2 added to the gradient* (Caffe's ``weight_decay`` with its Adam solver, which
the paper used): ``g <- clip(g, -12, 12) + 5e-4 * w`` and then Adam, so the decay term is
rescaled by Adam's second-moment normaliser like any other gradient component.  It is applied to
kernels and weight matrices only (leaves with ``ndim >= 2`` whose name is not a bias or a batch
norm scale / offset).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, NamedTuple

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mstrnn_jax import evaluate, host_memory, models, parallel
from mstrnn_jax.data import pipeline
from mstrnn_jax.errors import ArgError

PyTree = Any
Heads = tuple[tuple[str, int], ...]

# Names of parameter leaves that never get weight decay (biases, BN gamma / beta).
_NO_DECAY_NAMES = frozenset({'bias', 'b', 'b_tilde', 'scale', 'gamma', 'beta', 'offset'})


# --------------------------------------------------------------------------------------------
# The model as seen by the engine
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelFns:
  """The two pure model functions the engine needs, plus the facts it needs about them.

  init(key) -> {'params': pytree, 'batch_stats': pytree}
  apply(params, batch_stats, videos, taus, train) -> (logits, new_batch_stats)
    videos: float32 [batch, time, size, size, 3] in [0, 1]; taus: float32 [n_taus];
    logits: dict head -> float32 [batch, time, classes].
  batch_statistics(params, batch_stats, videos, taus) -> stats (optional): the per-step batch
    statistics of ``videos`` (training-mode normalisation), a tree like ``batch_stats`` whose
    BN nodes are ``{'mean', 'var'}``; it is what the ``'subject'`` and ``'population'``
    evaluation statistics (:data:`EVAL_STATS`) are built from.  None: only ``'running'``.
  """

  init: Callable[[jax.Array], Mapping[str, PyTree]]
  apply: Callable[..., tuple[dict[str, jax.Array], PyTree]]
  heads: Heads
  input_size: int
  n_taus: int
  batch_statistics: Callable[..., PyTree] | None = None


def model_fns(cfg) -> ModelFns:
  """Binds :mod:`mstrnn_jax.models` functions for ``cfg`` (a ``configs.ModelConfig``)."""

  def apply(params, batch_stats, videos, taus, train):
    out = models.apply(cfg, params, batch_stats, videos, taus, train=train)
    return out.logits, out.batch_stats

  # Momentum 0: the "updated running statistics" of a training-mode pass are exactly the batch
  # statistics of its steps (``new = 0 * old + 1 * batch``).
  plain = dataclasses.replace(cfg, bn_momentum=0.0)

  def batch_statistics(params, batch_stats, videos, taus):
    return models.apply(plain, params, batch_stats, videos, taus, train=True).batch_stats

  return ModelFns(
    init=lambda key: models.init(cfg, key),
    apply=apply,
    heads=tuple(cfg.heads),
    input_size=int(cfg.input_size),
    n_taus=len(cfg.taus),
    batch_statistics=batch_statistics,
  )


# --------------------------------------------------------------------------------------------
# Loss and optimiser
# --------------------------------------------------------------------------------------------
def voting_cross_entropy(
  logits: Mapping[str, jax.Array], labels: jax.Array, heads: Heads, voting_steps: int
) -> jax.Array:
  """Eq. (9), summed over heads.

  Args:
    logits: dict head -> float [batch, time, classes].
    labels: int32 [batch, n_heads], columns ordered like ``heads``.
    heads: ((name, n_classes), ...).
    voting_steps: L, the number of final time steps that carry the loss.
  Returns:
    Scalar: sum over heads of the batch mean of the cross-entropy averaged over the last L
    steps.
  """
  chex.assert_rank(labels, 2)
  total = jnp.zeros((), jnp.float32)
  for h, (name, n_classes) in enumerate(heads):
    lg = logits[name]
    chex.assert_rank(lg, 3)
    chex.assert_axis_dimension(lg, 2, n_classes)
    lg = lg[:, -voting_steps:].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(
      lg, jnp.broadcast_to(labels[:, h, None], lg.shape[:2])
    )
    total = total + jnp.mean(ce)
  return total


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """The paper's optimiser (Sec. II.E).

  lr_values[i] holds from epoch ``lr_boundaries[i-1]`` (0 for i = 0) up to ``lr_boundaries[i]``;
  ``len(lr_values) == len(lr_boundaries) + 1``. A value out of range raises ``ArgError`` naming
  the field.
  """

  lr_values: tuple[float, ...] = (0.01, 0.005, 0.001)
  lr_boundaries: tuple[int, ...] = (200, 300)
  weight_decay: float = 5e-4
  clip: float = 12.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8

  def __post_init__(self):
    if len(self.lr_values) != len(self.lr_boundaries) + 1:
      raise ArgError(
        'lr_boundaries',
        f'OptimConfig: {len(self.lr_values)} learning rates need '
        f'{len(self.lr_values) - 1} epoch boundaries, got {self.lr_boundaries}.',
      )
    if list(self.lr_boundaries) != sorted(self.lr_boundaries):
      raise ArgError(
        'lr_boundaries', f'OptimConfig: lr_boundaries must increase, got {self.lr_boundaries}.'
      )
    for name, ok, rule in (
      ('lr_values', all(v > 0 for v in self.lr_values), 'all > 0'),
      ('weight_decay', self.weight_decay >= 0, '>= 0'),
      ('clip', self.clip > 0, '> 0 (inf turns clipping off)'),
      ('b1', 0 <= self.b1 < 1, 'in [0, 1)'),
      ('b2', 0 <= self.b2 < 1, 'in [0, 1)'),
      ('eps', self.eps > 0, '> 0'),
    ):
      if not ok:
        raise ArgError(name, f'OptimConfig: {name} must be {rule}, got {getattr(self, name)}.')


def lr_schedule(optim: OptimConfig, steps_per_epoch: int) -> optax.Schedule:
  """Piecewise-constant learning rate over optimiser steps (boundaries given in epochs)."""
  values = jnp.asarray(optim.lr_values, jnp.float32)
  bounds = jnp.asarray([b * steps_per_epoch for b in optim.lr_boundaries], jnp.int32)

  def schedule(count):
    return values[jnp.searchsorted(bounds, count, side='right')]

  return schedule


def decay_mask(params: PyTree) -> PyTree:
  """True for leaves that get weight decay: ndim >= 2 and not named like a bias / BN scale."""

  def rule(path, leaf):
    last = path[-1]
    name = getattr(last, 'key', getattr(last, 'name', None))
    return bool(jnp.ndim(leaf) >= 2 and str(name) not in _NO_DECAY_NAMES)

  return jax.tree_util.tree_map_with_path(rule, params)


def make_optimizer(optim: OptimConfig, steps_per_epoch: int) -> optax.GradientTransformation:
  """clip each element to [-clip, clip] -> + weight_decay * w (masked) -> Adam -> -lr(step)."""
  return optax.chain(
    optax.clip(optim.clip),
    optax.add_decayed_weights(optim.weight_decay, mask=decay_mask),
    optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
    optax.scale_by_learning_rate(lr_schedule(optim, steps_per_epoch)),
  )


# --------------------------------------------------------------------------------------------
# State and single-run steps
# --------------------------------------------------------------------------------------------
@flax.struct.dataclass
class TrainState:
  """One run's training state (stacked on a leading run axis inside the engine)."""

  params: PyTree
  batch_stats: PyTree
  opt_state: optax.OptState
  key: jax.Array  # uint32 [2] raw PRNG key data, the run's own stream
  epoch: jax.Array  # int32 [], epochs completed


class StepMetrics(NamedTuple):
  """Per-step training metrics of one run."""

  loss: jax.Array  # float32 []
  correct: jax.Array  # int32 [n_heads + 1]: correct predictions per head, then joint
  count: jax.Array  # int32 []: videos in the batch


def create_train_state(
  model: ModelFns, tx: optax.GradientTransformation, key: jax.Array
) -> TrainState:
  """Initialises one run from a raw PRNG key (uint32 [2])."""
  init_key, run_key = jax.random.split(jax.random.wrap_key_data(key))
  variables = model.init(init_key)
  params = variables['params']
  return TrainState(
    params=params,
    batch_stats=variables.get('batch_stats', {}),
    opt_state=tx.init(params),
    key=jax.random.key_data(run_key),
    epoch=jnp.zeros((), jnp.int32),
  )


def train_step(
  model: ModelFns,
  tx: optax.GradientTransformation,
  voting_steps: int,
  vote_rule: str,
  state: TrainState,
  videos: jax.Array,
  labels: jax.Array,
  taus: jax.Array,
  crop_key: jax.Array,
  tempo: pipeline.TempoWarp = pipeline.TempoWarp(),
) -> tuple[TrainState, StepMetrics]:
  """One optimiser step of one run.

  Args:
    videos: uint8 [batch, time, height, width, 3] (uncropped).
    labels: int32 [batch, n_heads].
    taus: float32 [n_taus].
    crop_key: PRNG key for the random crop (and, folded with 1, for the tempo warp).
    tempo: training-time tempo augmentation (off by default: the crop stream is unchanged).
  """
  chex.assert_rank(videos, 5)
  if tempo.active:
    videos = pipeline.random_time_warp(jax.random.fold_in(crop_key, 1), videos, tempo)
  x = pipeline.to_float(pipeline.random_crop(crop_key, videos, model.input_size))

  def loss_fn(params):
    logits, new_stats = model.apply(params, state.batch_stats, x, taus, True)
    loss = voting_cross_entropy(logits, labels, model.heads, voting_steps)
    return loss, (logits, new_stats)

  (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  correct = evaluate.correct_flags(logits, labels, model.heads, voting_steps, vote_rule)
  metrics = StepMetrics(
    loss=loss,
    correct=jnp.sum(correct, axis=0).astype(jnp.int32),
    count=jnp.asarray(labels.shape[0], jnp.int32),
  )
  return state.replace(params=params, batch_stats=new_stats, opt_state=opt_state), metrics


def eval_step(
  model: ModelFns,
  voting_steps: int,
  params: PyTree,
  batch_stats: PyTree,
  videos: jax.Array,
  taus: jax.Array,
) -> dict[str, jax.Array]:
  """Voting-period logits of one run on centre-cropped videos, normalised with ``batch_stats``.

  Args:
    videos: uint8 [batch, time, height, width, 3].
  Returns:
    dict head -> float32 [batch, voting_steps, classes].
  """
  x = pipeline.to_float(pipeline.center_crop(videos, model.input_size))
  logits, _ = model.apply(params, batch_stats, x, taus, False)
  return {name: logits[name][:, -voting_steps:] for name, _ in model.heads}


# --------------------------------------------------------------------------------------------
# Evaluation statistics
# --------------------------------------------------------------------------------------------
EVAL_STATS = ('running', 'subject', 'population')
# The experiments' default: every mode, the first one (population) the reported figure.
DEFAULT_EVAL_STATS = ('population', 'running', 'subject')
EVAL_STATS_DOC = {
  'running': 'the stored per-step running averages (momentum) of training',
  'subject': "the per-step statistics of the evaluated subject's own videos, as one batch",
  'population': "per-step statistics re-estimated on the fold's training set with the "
  'current weights (exact pooled averages, centre crops)',
}
_POPULATION_SALT = 2  # the population batches' PRNG stream (0: shuffling, 1: crops)


def check_eval_stats(eval_stats: tuple[str, ...], model: ModelFns | None = None) -> None:
  """Raises ValueError naming a bad evaluation-statistics mode (see :data:`EVAL_STATS`)."""
  bad = [m for m in eval_stats if m not in EVAL_STATS]
  if bad or not eval_stats or len(set(eval_stats)) != len(eval_stats):
    raise ValueError(f'eval_stats {tuple(eval_stats)}: give distinct modes out of {EVAL_STATS}.')
  if model is not None and model.batch_statistics is None and set(eval_stats) - {'running'}:
    raise ValueError(
      f'eval_stats {tuple(eval_stats)}: this ModelFns has no batch_statistics '
      "function; only 'running' is possible (train.model_fns provides it)."
    )


def is_bn(node: Any) -> bool:
  """Whether ``node`` of a batch-stats tree is one BN's statistics ``{'mean', 'var'}``."""
  return isinstance(node, Mapping) and set(node) == {'mean', 'var'}


def pool_statistics(stats: PyTree) -> PyTree:
  """Per-step BN statistics of K equally sized batches -> those of their union.

  Args:
    stats: tree whose BN nodes are ``{'mean': [K, ...], 'var': [K, ...]}`` (biased variances,
      as a training-mode pass computes them); other leaves ``[K, ...]``.
  Returns:
    The tree without the K axis: ``mean = mean_k(mean_k)``, ``var = mean_k(var_k + mean_k^2) -
    mean^2`` (the law of total variance, clamped at 0); other leaves their mean over K.
  """

  def pool(node):
    if not is_bn(node):
      return jnp.mean(node, axis=0)
    mean = jnp.mean(node['mean'], axis=0)
    second = jnp.mean(node['var'] + jnp.square(node['mean']), axis=0)
    return {'mean': mean, 'var': jnp.maximum(second - jnp.square(mean), 0.0)}

  return jax.tree.map(pool, stats, is_leaf=is_bn)


def subject_statistics(
  model: ModelFns,
  params: PyTree,
  batch_stats: PyTree,
  videos: jax.Array,
  rows: jax.Array,
  mask: jax.Array,
  taus: jax.Array,
) -> PyTree:
  """Per-step batch statistics of one held-out subject's videos, taken as one batch.

  Padding never enters: the ``n = sum(mask)`` valid rows fill all ``len(rows)`` batch slots
  cyclically, so the statistics are exactly those of the valid videos whenever ``n`` divides
  ``len(rows)`` (always when no padding is needed, i.e. subjects with equal video counts);
  otherwise the first ``len(rows) mod n`` valid videos count once more.

  Args:
    videos: uint8 [N, time, height, width, 3], the whole dataset.
    rows: int32 [n_max] dataset rows of the subject (padded); mask: bool [n_max] (>= 1 True).
  """
  order = jnp.argsort(~mask, stable=True)  # valid rows first, in order
  n = jnp.maximum(jnp.sum(mask), 1)
  filled = rows[order[jnp.arange(rows.shape[0]) % n]]
  x = pipeline.to_float(pipeline.center_crop(videos[filled], model.input_size))
  return model.batch_statistics(params, batch_stats, x, taus)


def population_statistics(
  model: ModelFns,
  params: PyTree,
  batch_stats: PyTree,
  videos: jax.Array,
  train_idx: jax.Array,
  n_train: jax.Array,
  taus: jax.Array,
  key: jax.Array,
  epoch: jax.Array,
  batch_size: int,
  max_batches: int | None = None,
) -> PyTree:
  """Per-step BN statistics of a run's training set under the current weights.

  Training videos (centre crops) pass in training-mode batches of ``batch_size`` (a shuffled
  order from ``key`` and ``epoch``, as in training; the last batch wraps around to the first
  videos), and the per-batch statistics are pooled exactly (:func:`pool_statistics`): the
  population statistics of the "precise BN" practice, not a momentum average.  Every video
  passes once, or, with ``max_batches``, only the first ``max_batches`` batches of that
  order (a fresh random subset of ``max_batches * batch_size`` videos every epoch).

  Args:
    train_idx: int32 [n_train_max] (padded); n_train: int32 [] valid entries; key: uint32 [2].
  """
  steps = -(-train_idx.shape[0] // batch_size)
  if max_batches is not None:
    steps = max(1, min(steps, max_batches))
  pkey = jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(key), _POPULATION_SALT))
  batches = epoch_batches(pkey, epoch, train_idx, n_train, steps, batch_size)

  def batch_stats_of(r):
    x = pipeline.to_float(pipeline.center_crop(videos[r], model.input_size))
    return model.batch_statistics(params, batch_stats, x, taus)

  return pool_statistics(jax.lax.map(batch_stats_of, batches))


# --------------------------------------------------------------------------------------------
# Run tables and the stacked programs
# --------------------------------------------------------------------------------------------
@flax.struct.dataclass
class RunTables:
  """Per-run index tables, every leaf with a leading run axis R.

  train_idx: int32 [R, n_train_max] dataset rows of the run's training set (padded with 0).
  n_train:   int32 [R] valid entries of ``train_idx``.
  test_idx:  int32 [R, n_test_max] dataset rows of the held-out subject (padded with 0).
  test_mask: bool  [R, n_test_max].
  taus:      float32 [R, n_taus].
  val_idx:   int32 [R, n_val_max] dataset rows of the run's validation subjects (padded), or
             None (no validation subjects).
  val_mask:  bool  [R, n_val_max], or None.
  """

  train_idx: jax.Array
  n_train: jax.Array
  test_idx: jax.Array
  test_mask: jax.Array
  taus: jax.Array
  val_idx: jax.Array | None = None
  val_mask: jax.Array | None = None


def epoch_batches(
  key: jax.Array,
  epoch: jax.Array,
  train_idx: jax.Array,
  n_train: jax.Array,
  steps: int,
  batch_size: int,
) -> jax.Array:
  """One run's shuffled batches for ``epoch``: int32 [steps, batch_size] dataset rows.

  A fresh permutation of the run's ``n_train`` valid rows per epoch (from its key and the epoch
  number, so resuming reproduces it); batches take consecutive slices of it.
  """
  ekey = jax.random.fold_in(jax.random.wrap_key_data(key), epoch)
  noise = jax.random.uniform(jax.random.fold_in(ekey, 0), train_idx.shape)
  valid = jnp.arange(train_idx.shape[0]) < n_train
  order = jnp.argsort(jnp.where(valid, noise, 2.0))
  pos = jnp.arange(steps * batch_size) % n_train
  return train_idx[order[pos]].reshape(steps, batch_size)


class EpochMetrics(NamedTuple):
  """Per-step metrics of every run: loss float32 [R, steps], correct int32 [R, steps, H+1],
  count int32 [R, steps]."""

  loss: jax.Array
  correct: jax.Array
  count: jax.Array


@dataclasses.dataclass(frozen=True)
class Programs:
  """The jitted programs of one experiment (each traced once).

  init(keys uint32 [R, 2]) -> stacked TrainState
  train_epoch(states, videos, labels, tables) -> (states, EpochMetrics)
  evaluate(states, videos, labels, tables) -> EvalFlags: int32 correct flags of the held-out
    (and validation) videos under every mode of ``eval_stats``
  """

  init: Callable[..., TrainState]
  train_epoch: Callable[..., tuple[TrainState, EpochMetrics]]
  evaluate: Callable[..., 'EvalFlags']
  eval_stats: tuple[str, ...]
  steps_per_epoch: int


class EvalFlags(NamedTuple):
  """Correct flags per evaluation-statistics mode (in ``Programs.eval_stats`` order).

  test: int32 [R, n_modes, n_test_max, n_heads + 1]; val: int32 [R, n_modes, n_val_max,
  n_heads + 1] on the validation subjects, or None when the tables have none.
  population: the ``'population'`` statistics the flags used, a tree like the stacked
  ``batch_stats`` (leading axis R), or None when that mode is not evaluated; checkpoints keep
  it so that a trained run is applied later with the statistics its accuracy was measured with.
  """

  test: jax.Array
  val: jax.Array | None
  population: PyTree | None = None


# XLA:CPU backend optimisation level of the engine's programs: 1 instead of the default 2
# compiles ~20% faster with the same step time (docs/model.md, "Compile time").
CPU_OPTIMIZATION_LEVEL = 1


def compiler_options(backend: str | None = None) -> dict | None:
  """XLA options the engine's programs compile with: on CPU the backend optimisation level
  :data:`CPU_OPTIMIZATION_LEVEL`; elsewhere XLA's defaults (None)."""
  backend = jax.default_backend() if backend is None else backend
  if backend != 'cpu':
    return None
  return {'xla_backend_optimization_level': CPU_OPTIMIZATION_LEVEL}


def jit(fn: Callable, **kwargs) -> Callable:
  """``jax.jit`` with :func:`compiler_options` (every program of the engine).

  Also makes this process return the compiler's freed memory to the OS after each compile
  (:func:`mstrnn_jax.host_memory.release_after_compiles`; same values, lower peak RSS).
  """
  host_memory.release_after_compiles()
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def default_run_chunk(backend: str | None = None) -> int | None:
  """Runs vectorised together per device: all of them (None) on GPU/TPU, one at a time on CPU.

  On CPU ``vmap`` over per-run weights turns every convolution / matrix product into a batched
  (grouped) one that XLA:CPU runs slower than the same work run by run (benchmarks/RESULTS.md).
  """
  backend = jax.default_backend() if backend is None else backend
  return 1 if backend == 'cpu' else None


def make_programs(
  model: ModelFns,
  optim: OptimConfig,
  *,
  batch_size: int,
  steps_per_epoch: int,
  voting_steps: int,
  vote_rule: str = 'vote',
  eval_batch_size: int = 32,
  eval_stats: tuple[str, ...] = DEFAULT_EVAL_STATS,
  population_batches: int | None = None,
  tempo_warp: pipeline.TempoWarp = pipeline.TempoWarp(),
  mesh: jax.sharding.Mesh | None = None,
  run_chunk: int | None | str = 'auto',
) -> Programs:
  """Builds the jitted init / train-epoch / evaluate programs over the run axis.

  ``evaluate`` evaluates every held-out (and validation) video once per mode of ``eval_stats``
  (names in :data:`EVAL_STATS`): the same weights, normalised with the stored running
  statistics, with the evaluated subject's own batch statistics (:func:`subject_statistics`;
  the validation subjects' videos form one batch) or with statistics re-estimated on the run's
  training set (:func:`population_statistics`, training batches of ``batch_size``, at most
  ``population_batches`` of them (None: the whole set), computed once for the test and
  validation videos).
  Training batches are warped in time by ``tempo_warp`` (:func:`pipeline.random_time_warp`;
  off by default); evaluation and the statistics read the videos as they are.

  The run axis of every stacked argument is split over ``mesh`` (1-D, axis
  ``parallel.AXIS``) with ``jax.shard_map``; each device runs its block of runs with
  ``jax.lax.map(..., batch_size=run_chunk)``: ``run_chunk`` runs at a time are ``vmap``-ped
  together, ``None`` vectorises the whole block, ``'auto'`` is :func:`default_run_chunk`.
  Every run's arithmetic is the same in all modes; only the schedule differs.  ``mesh=None``
  uses a one-device mesh.  Stacked arguments must have a run axis divisible by the mesh size
  (``parallel.pad_runs``).
  """
  if vote_rule not in evaluate.VOTE_RULES:
    raise ValueError(f'vote_rule must be one of {evaluate.VOTE_RULES}, got {vote_rule!r}.')
  if batch_size < 1 or steps_per_epoch < 1:
    raise ValueError(
      f'batch_size ({batch_size}) and steps_per_epoch ({steps_per_epoch}) must be >= 1.'
    )
  if population_batches is not None and population_batches < 1:
    raise ValueError(f'population_batches must be >= 1 or None, got {population_batches}.')
  eval_stats = tuple(eval_stats)
  check_eval_stats(eval_stats, model)
  run_chunk = default_run_chunk() if run_chunk == 'auto' else run_chunk
  mesh = parallel.make_mesh(1) if mesh is None else mesh
  tx = make_optimizer(optim, steps_per_epoch)
  step_fn = functools.partial(train_step, model, tx, voting_steps, vote_rule, tempo=tempo_warp)
  eval_fn = functools.partial(eval_step, model, voting_steps)

  def init(keys):
    return jax.vmap(lambda k: create_train_state(model, tx, k))(keys)

  def run_epoch(state, videos, labels, train_idx, n_train, taus):
    """One run's epoch: lax.scan of train_step over its batches."""
    batches = epoch_batches(state.key, state.epoch, train_idx, n_train, steps_per_epoch, batch_size)
    ekey = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.epoch)

    def body(st, xs):
      rows, i = xs
      crop_key = jax.random.fold_in(jax.random.fold_in(ekey, 1), i)
      return step_fn(st, videos[rows], labels[rows], taus, crop_key)

    state, metrics = jax.lax.scan(body, state, (batches, jnp.arange(steps_per_epoch)))
    return state.replace(epoch=state.epoch + 1), EpochMetrics(*metrics)

  def run_eval(params, batch_stats, videos, labels, test_idx, taus):
    """One run's held-out videos, ``eval_batch_size`` at a time: int32 [n_test, H+1]."""
    n = test_idx.shape[0]
    n_chunks = -(-n // eval_batch_size)
    rows = jnp.pad(test_idx, (0, n_chunks * eval_batch_size - n)).reshape(n_chunks, -1)

    def chunk(r):
      logits = eval_fn(params, batch_stats, videos[r], taus)
      return evaluate.correct_flags(logits, labels[r], model.heads, voting_steps, vote_rule)

    flags = jax.lax.map(chunk, rows)
    return flags.reshape(n_chunks * eval_batch_size, -1)[:n]

  def mode_statistics(mode, state, videos, table, rows, mask, population):
    if mode == 'running':
      return state.batch_stats
    if mode == 'subject':
      return subject_statistics(
        model, state.params, state.batch_stats, videos, rows, mask, table.taus
      )
    return population

  def run_eval_stats(state, videos, labels, table):
    """One run under every mode: EvalFlags with leaves [len(eval_stats), n, H+1]."""
    population = None
    if 'population' in eval_stats:
      population = population_statistics(
        model,
        state.params,
        state.batch_stats,
        videos,
        table.train_idx,
        table.n_train,
        table.taus,
        state.key,
        state.epoch,
        batch_size,
        population_batches,
      )

    def flags_of(rows, mask):
      # One traced evaluation pass mapped over the modes' stacked statistics (not one copy
      # per mode: the program compiles faster; the arithmetic per mode is unchanged).
      stats = [mode_statistics(m, state, videos, table, rows, mask, population) for m in eval_stats]
      stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *stats)
      return jax.lax.map(
        lambda st: run_eval(state.params, st, videos, labels, rows, table.taus), stacked
      )

    val = None if table.val_idx is None else flags_of(table.val_idx, table.val_mask)
    return EvalFlags(test=flags_of(table.test_idx, table.test_mask), val=val, population=population)

  def map_runs(fn, xs):
    if run_chunk is None:
      return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=None if run_chunk == 1 else run_chunk)

  def local_train(states, videos, labels, tables):
    return map_runs(
      lambda a: run_epoch(a[0], videos, labels, a[1].train_idx, a[1].n_train, a[1].taus),
      (states, tables),
    )

  def local_eval(states, videos, labels, tables):
    return map_runs(lambda a: run_eval_stats(a[0], videos, labels, a[1]), (states, tables))

  runs, rep = jax.sharding.PartitionSpec(parallel.AXIS), jax.sharding.PartitionSpec()
  shard = parallel.run_sharding(mesh)
  train_epoch = jax.shard_map(
    local_train, mesh=mesh, in_specs=(runs, rep, rep, runs), out_specs=runs, check_vma=False
  )
  evaluate_runs = jax.shard_map(
    local_eval, mesh=mesh, in_specs=(runs, rep, rep, runs), out_specs=runs, check_vma=False
  )
  return Programs(
    init=jit(init, out_shardings=shard),
    train_epoch=jit(train_epoch, donate_argnums=0),
    evaluate=jit(evaluate_runs),
    eval_stats=eval_stats,
    steps_per_epoch=steps_per_epoch,
  )


def stack_labels(labels: Mapping[str, np.ndarray], heads: Heads) -> np.ndarray:
  """dict head -> int [N]  ->  int32 [N, n_heads] ordered like ``heads``."""
  missing = [h for h, _ in heads if h not in labels]
  if missing:
    raise ValueError(
      f'Dataset labels lack heads {missing} the model predicts; the model config '
      "must be derived with the dataset's heads (configs.derive_config)."
    )
  return np.stack([np.asarray(labels[h], np.int32) for h, _ in heads], axis=1)


# --------------------------------------------------------------------------------------------
# Streamed data: one program per step over the run axis (data larger than memory)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepPrograms:
  """The jitted per-step programs of the streaming path (``data.stream.BatchStream`` batches).

  train_step(states, videos uint8 [R, B, T, H, W, 3], labels int32 [R, B, n_heads], taus, i)
      -> (states, StepMetrics with a leading R axis): step ``i`` of the current epoch, with the
      crop key of the in-memory ``train_epoch``'s step ``i``
  end_epoch(states) -> states with ``epoch + 1``
  evaluate(states, videos uint8 [R, b, ...], labels [R, b, n_heads], taus)
      -> int32 correct flags [R, b, n_heads + 1]
  Same rows (``data.stream.epoch_rows``), keys and arithmetic as :func:`make_programs`.
  """

  train_step: Callable[..., tuple[TrainState, StepMetrics]]
  end_epoch: Callable[[TrainState], TrainState]
  evaluate: Callable[..., jax.Array]
  steps_per_epoch: int


def make_step_programs(
  model: ModelFns,
  optim: OptimConfig,
  *,
  batch_size: int,
  steps_per_epoch: int,
  voting_steps: int,
  vote_rule: str = 'vote',
  tempo_warp: pipeline.TempoWarp = pipeline.TempoWarp(),
  mesh: jax.sharding.Mesh | None = None,
  run_chunk: int | None | str = 'auto',
) -> StepPrograms:
  """:func:`make_programs`' work one step at a time on streamed batches (every stacked argument,
  the batches too, sharded over ``mesh`` along the run axis)."""
  del batch_size  # the batch shape comes with the streamed videos
  run_chunk = default_run_chunk() if run_chunk == 'auto' else run_chunk
  mesh = parallel.make_mesh(1) if mesh is None else mesh
  tx = make_optimizer(optim, steps_per_epoch)
  step_fn = functools.partial(train_step, model, tx, voting_steps, vote_rule, tempo=tempo_warp)
  eval_fn = functools.partial(eval_step, model, voting_steps)

  def one_step(state, videos, labels, taus, i):
    ekey = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.epoch)
    crop_key = jax.random.fold_in(jax.random.fold_in(ekey, 1), i)
    return step_fn(state, videos, labels, taus, crop_key)

  def one_eval(state, videos, labels, taus):
    logits = eval_fn(state.params, state.batch_stats, videos, taus)  # running statistics
    return evaluate.correct_flags(logits, labels, model.heads, voting_steps, vote_rule)

  def map_runs(fn, xs):
    if run_chunk is None:
      return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=None if run_chunk == 1 else run_chunk)

  def local_step(states, videos, labels, taus, i):
    return map_runs(lambda a: one_step(*a, i), (states, videos, labels, taus))

  def local_eval(states, videos, labels, taus):
    return map_runs(lambda a: one_eval(*a), (states, videos, labels, taus))

  runs, rep = jax.sharding.PartitionSpec(parallel.AXIS), jax.sharding.PartitionSpec()
  step = jax.shard_map(
    local_step, mesh=mesh, in_specs=(runs, runs, runs, runs, rep), out_specs=runs, check_vma=False
  )
  evaluate_runs = jax.shard_map(
    local_eval, mesh=mesh, in_specs=(runs,) * 4, out_specs=runs, check_vma=False
  )
  return StepPrograms(
    train_step=jit(step, donate_argnums=0),
    end_epoch=jit(lambda s: s.replace(epoch=s.epoch + 1), donate_argnums=0),
    evaluate=jit(evaluate_runs),
    steps_per_epoch=steps_per_epoch,
  )
