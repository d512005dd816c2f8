"""Analyses of trained models: PCA trajectories (Figs. 5, 8), end-point separation, early recognition.

The analyses are pure functions of arrays (their figures are in `mstrnn_jax.plots`);
`analyze_run` (what `experiments/analyze.py` calls) loads a trained workdir, runs the chosen
videos and writes the figures and tables. The pieces
compose:

    acts = out.activations['context2']                  # [videos, time, h, w, c] from models.apply
    traj = flatten_trajectories(acts)                   # [videos, time, features]
    pca = fit_pca(traj.reshape(-1, traj.shape[-1]), 3)  # PCA over all (video, time) points
    proj = pca_transform(pca, traj)                     # [videos, time, 3]
    sep = endpoint_separation(traj, [0], [3])           # end-point distance / trajectory spread
    fig = plots.plot_pca_trajectories({'MSTRNN': proj}, names, voting_steps=15,
                                      explained={'MSTRNN': pca.explained_variance_ratio})
    curves = early_recognition(out.logits, labels)      # head -> accuracy [time]

Conventions (Sec. III.B of the paper): a trajectory is one video's activations over its whole
(padded) length; the voting period is its last `voting_steps` time steps.
"""

from __future__ import annotations

import functools
from typing import Mapping, NamedTuple, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

# Fig. 5 / Fig. 8 panels: (x component, y component), 0-based.


class PCA(NamedTuple):
  """A fitted principal component analysis.

  mean: [features] -- the data mean that is subtracted before projecting.
  components: [n_components, features] -- orthonormal rows, by decreasing variance. The sign of
    each row is fixed so that its entry of largest magnitude is positive (deterministic output).
  explained_variance: [n_components] -- variance of the data along each component (ddof=1).
  explained_variance_ratio: [n_components] -- explained_variance / total variance.
  """

  mean: jax.Array
  components: jax.Array
  explained_variance: jax.Array
  explained_variance_ratio: jax.Array


@functools.partial(jax.jit, static_argnames=('n_components',))
def _fit_pca(x: jax.Array, n_components: int) -> PCA:
  n, d = x.shape
  mean = jnp.mean(x, axis=0)
  xc = x - mean
  hi = jax.lax.Precision.HIGHEST
  total_var = jnp.sum(xc * xc) / (n - 1)
  if d <= n:
    # Primal form: eigen-decomposition of the [d, d] covariance.
    cov = jnp.matmul(xc.T, xc, precision=hi) / (n - 1)
    evals, evecs = jnp.linalg.eigh(cov)  # ascending
    evals = evals[::-1][:n_components]
    comps = evecs[:, ::-1][:, :n_components].T  # [k, d]
  else:
    # Dual form: eigen-decomposition of the [n, n] Gram matrix, then map back to feature space.
    gram = jnp.matmul(xc, xc.T, precision=hi) / (n - 1)
    evals, evecs = jnp.linalg.eigh(gram)
    evals = evals[::-1][:n_components]
    u = evecs[:, ::-1][:, :n_components]  # [n, k]
    scale = jnp.sqrt(jnp.maximum(evals, 0.0) * (n - 1))
    comps = (jnp.matmul(xc.T, u, precision=hi) / jnp.where(scale > 0, scale, 1.0)).T
    comps = comps / jnp.maximum(jnp.linalg.norm(comps, axis=1, keepdims=True), 1e-30)
  evals = jnp.maximum(evals, 0.0)
  pivot = jnp.take_along_axis(comps, jnp.argmax(jnp.abs(comps), axis=1)[:, None], axis=1)
  comps = comps * jnp.where(pivot < 0, -1.0, 1.0)
  return PCA(
    mean=mean,
    components=comps,
    explained_variance=evals,
    explained_variance_ratio=evals / total_var,
  )


def fit_pca(x: jax.Array | np.ndarray, n_components: int = 3) -> PCA:
  """Fits PCA to points `x`: [points, features] (float). Returns the top `n_components` components.

  Implemented with a symmetric eigen-decomposition of the smaller of the covariance ([features,
  features]) and Gram ([points, points]) matrices, so that wide activations (thousands of features,
  a few hundred time steps) stay cheap.

  Raises ValueError if there are fewer than two points, if `n_components` exceeds
  min(points - 1, features), or if the data have fewer than `n_components` directions of non-zero
  variance (e.g. a layer whose units are all dead): such components would be undefined.
  """
  x = jnp.asarray(x)
  chex.assert_rank(x, 2)
  n, d = x.shape
  if n < 2:
    raise ValueError(f'mstrnn_jax/analysis.py: fit_pca: need at least 2 points, got {n}.')
  if not 1 <= n_components <= min(n - 1, d):
    raise ValueError(
      f'mstrnn_jax/analysis.py: fit_pca: n_components={n_components} must be in '
      f'[1, min(points - 1, features)] = [1, {min(n - 1, d)}] for x of shape {x.shape}.'
    )
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  if not bool(jnp.all(jnp.isfinite(x))):
    raise ValueError(
      'mstrnn_jax/analysis.py: fit_pca: non-finite values in the input points; '
      'check the activations.'
    )
  pca = _fit_pca(x, n_components)
  ratio = np.asarray(pca.explained_variance_ratio)
  if not np.all(np.isfinite(ratio)) or ratio[-1] <= 1e-6:
    raise ValueError(
      f'mstrnn_jax/analysis.py: fit_pca: the points span fewer than {n_components} directions of '
      f'non-zero variance (explained variance ratios {ratio.tolist()}); the activations are (nearly) '
      'constant -- check that the layer is alive (e.g. not all-zero ReLU units) and that the videos '
      'differ.'
    )
  return pca


@jax.jit
def pca_transform(pca: PCA, x: jax.Array) -> jax.Array:
  """Projects `x`: [..., features] onto the fitted components -> [..., n_components]."""
  chex.assert_equal(x.shape[-1], pca.mean.shape[0])
  return jnp.matmul(x - pca.mean, pca.components.T, precision=jax.lax.Precision.HIGHEST)


def flatten_trajectories(activations: jax.Array | np.ndarray) -> jax.Array:
  """Flattens per-step activations [videos, time, ...] (e.g. [videos, time, h, w, c] conv maps)
  to trajectories [videos, time, features]."""
  activations = jnp.asarray(activations)
  if activations.ndim < 3:
    raise ValueError(
      'mstrnn_jax/analysis.py: flatten_trajectories: expected [videos, time, ...features], '
      f'got shape {activations.shape}.'
    )
  return activations.reshape(activations.shape[0], activations.shape[1], -1)


def trajectory_spread(trajectories: jax.Array) -> jax.Array:
  """Root-mean-square distance of all points of `trajectories` [videos, time, dims] from their
  common mean: the scale against which end-point distances are measured (a scalar)."""
  chex.assert_rank(trajectories, 3)
  pts = trajectories.reshape(-1, trajectories.shape[-1])
  return jnp.sqrt(jnp.mean(jnp.sum((pts - jnp.mean(pts, axis=0)) ** 2, axis=-1)))


def endpoint_separation(
  trajectories: jax.Array, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
  """Distance between the mean end point of the videos in `group_a` and that of `group_b`,
  divided by `trajectory_spread` of all trajectories: scale-free, so it compares across models.

  trajectories: [videos, time, dims] (raw activations or their PCA projections); the end point of
  a video is its last time step. E.g. Fig. 5: group_a = [JP-JP-JP], group_b = [OH-JP-JP]; a value
  near 0 means the end points converged (the first primitive was forgotten). Fig. 8: group_a = all
  Sweep-Laptop videos, group_b = all Close-Laptop videos (distance of the two clusters' centres).
  """
  trajectories = jnp.asarray(trajectories)
  chex.assert_rank(trajectories, 3)
  if len(group_a) == 0 or len(group_b) == 0:
    raise ValueError(
      'mstrnn_jax/analysis.py: endpoint_separation: both groups need at least one video.'
    )
  ends = trajectories[:, -1, :]
  ca = jnp.mean(ends[jnp.asarray(group_a)], axis=0)
  cb = jnp.mean(ends[jnp.asarray(group_b)], axis=0)
  return float(jnp.linalg.norm(ca - cb) / trajectory_spread(trajectories))


def early_recognition(
  logits: Mapping[str, jax.Array], labels: Mapping[str, jax.Array]
) -> dict[str, np.ndarray]:
  """Accuracy as a function of time step: how soon a model knows.

  logits: head -> [videos, time, classes] (e.g. `models.apply(...).logits`);
  labels: head -> int [videos]. Returns head -> float accuracy [time] of the per-step argmax, plus
  'joint' (all heads right at that step) when there is more than one head.
  """
  if set(logits) != set(labels):
    raise ValueError(
      f'mstrnn_jax/analysis.py: early_recognition: logits heads {sorted(logits)} != '
      f'label heads {sorted(labels)}.'
    )
  correct = {}
  for head, lg in logits.items():
    lg = jnp.asarray(lg)
    lb = jnp.asarray(labels[head])
    chex.assert_rank([lg, lb], [3, 1])
    chex.assert_equal(lg.shape[0], lb.shape[0])
    correct[head] = jnp.argmax(lg, axis=-1) == lb[:, None]  # [videos, time]
  curves = {head: np.asarray(jnp.mean(c, axis=0)) for head, c in correct.items()}
  if len(correct) > 1:
    joint = functools.reduce(jnp.logical_and, correct.values())
    curves['joint'] = np.asarray(jnp.mean(joint, axis=0))
  return curves


def earliest_stable_step(curve: np.ndarray, level: float) -> int | None:
  """First time step t (0-based) from which `curve[t:]` stays >= `level`; None if the last one is below."""
  curve = np.asarray(curve)
  below = np.nonzero(curve < level)[0]
  if below.size == 0:
    return 0
  return None if below[-1] == curve.shape[0] - 1 else int(below[-1] + 1)


def early_recognition_table(
  curves: Mapping[str, Mapping[str, np.ndarray]],
  voting_steps: int,
  fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
  knows_level: float = 0.9,
) -> str:
  """Markdown table of early-recognition curves.

  curves: model -> head -> accuracy [time] (from `early_recognition`). One row per (model, head):
  accuracy (%) at the given fractions of the video length, mean accuracy over the voting period
  (last `voting_steps` steps), and "knows from": the first step (1-based, of T) from which the
  accuracy stays >= `knows_level` x its final value.
  """
  cols = [f't={f:.0%}' for f in fractions]
  lines = _header(
    ['model', 'head', *cols, f'voting period (last {voting_steps})', 'knows from step']
  )
  for model, heads in curves.items():
    for head, curve in heads.items():
      curve = np.asarray(curve)
      t_max = curve.shape[0]
      at = [curve[max(0, int(round(f * t_max)) - 1)] for f in fractions]
      stable = earliest_stable_step(curve, knows_level * curve[-1])
      knows = 'never' if stable is None else f'{stable + 1} / {t_max}'
      lines.append(
        f'| {model} | {head} | '
        + ' | '.join(f'{100 * a:.1f}' for a in at)
        + f' | {100 * curve[-voting_steps:].mean():.1f} | {knows} |'
      )
  return '\n'.join(lines) + '\n'


def name_parts(class_names: Sequence[str]) -> int:
  """How many '-'-separated parts every name of one head has (3 for 3ACWD's 'OH-JP-JP'); 1 when
  the names do not all split into the same number of parts."""
  counts = {len(str(n).split('-')) for n in class_names}
  return counts.pop() if len(counts) == 1 else 1


def voted(lg: jax.Array | np.ndarray, voting_steps: int, rule: str = 'vote') -> np.ndarray:
  """The voted class of each video (`evaluate.predict` over the last `voting_steps` steps).

  lg: [videos, time, classes]. Returns int [videos].
  """
  from mstrnn_jax import evaluate

  return np.asarray(evaluate.predict(jnp.asarray(lg)[:, -voting_steps:], rule))


def part_accuracy(
  logits: Mapping[str, jax.Array | np.ndarray],
  labels: Mapping[str, np.ndarray],
  class_names: Mapping[str, Sequence[str]],
  voting_steps: int,
  rule: str = 'vote',
) -> dict[str, float]:
  """Accuracy of each part of the recognised category: which part of a composition a model gets.

  Each head's voted prediction (`voted`: the last `voting_steps` steps) is split
  into the parts of its class name (`name_parts`): 3ACWD's / synth3a's 'OH-JP-JP' gives the
  first, second and third primitive, so a model that keeps only the last one scores chance on
  the first. A head whose names do not split counts as one part.

  logits: head -> [videos, time, classes]; labels: head -> int [videos].
  Returns {part name: accuracy in [0, 1]}, part names '<head>' or '<head>[i]' (1-based), in
  head order, then 'joint' (every head right).
  """
  out, joint = {}, None
  for head, lg in logits.items():
    names = [str(n) for n in class_names[head]]
    pred = voted(lg, voting_steps, rule)
    true = np.asarray(labels[head])
    chex.assert_equal(pred.shape, true.shape)
    parts = name_parts(names)
    split = [n.split('-') if parts > 1 else [n] for n in names]  # class -> its parts
    for j in range(parts):
      key = head if parts == 1 else f'{head}[{j + 1}]'
      out[key] = float(np.mean([split[p][j] == split[t][j] for p, t in zip(pred, true)]))
    right = pred == true
    joint = right if joint is None else joint & right
  out['joint'] = float(np.mean(joint))
  return out


# --------------------------------------------------------------------------------------------
# A trained run end to end (experiments/analyze.py)
# --------------------------------------------------------------------------------------------
# Paper's choices (Sec. III.B, III.C): Fig. 5 on 3ACWD, Fig. 8 on CL1AD (Sweep- vs Close-Laptop).
DEFAULT_SEQUENCES = {
  'synth3a': ('JP-JP-JP', 'OH-OH-OH', 'TH-TH-TH', 'OH-JP-JP', 'TH-JP-JP'),
  'weizmann_3acwd': ('JP-JP-JP', 'OH-OH-OH', 'TH-TH-TH', 'OH-JP-JP', 'TH-JP-JP'),
  'synthcl1': ('laptop-sweep', 'laptop-close'),
  'cl1ad': ('laptop-sweep', 'laptop-close'),
}
MODEL_TITLES = {'mstrnn': 'MSTRNN', 'mstnn': 'MSTNN', 'lrcn': 'LRCN'}


def confusion(
  logits: Mapping[str, jax.Array | np.ndarray],
  labels: Mapping[str, np.ndarray],
  num_classes: Mapping[str, int],
  voting_steps: int,
  rule: str = 'vote',
) -> dict[str, np.ndarray]:
  """Confusion matrix of each head's voted prediction (`voted`: the last `voting_steps`
  steps): which classes a model mixes up, e.g. synthcl2's '2_times' vs '3_times'.

  logits: head -> [videos, time, classes]; labels: head -> int [videos]; num_classes: head -> K.
  Returns {head: int64 [K, K]}, rows the true class, columns the predicted one (row sums: the
  videos of each true class).
  """
  out = {}
  for head, lg in logits.items():
    pred = voted(lg, voting_steps, rule)
    true = np.asarray(labels[head])
    chex.assert_equal(pred.shape, true.shape)
    k = num_classes[head]
    out[head] = np.bincount(true * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)
  return out


def accuracy_by_class(
  logits: Mapping[str, jax.Array | np.ndarray],
  labels: Mapping[str, np.ndarray],
  voting_steps: int,
  rule: str = 'vote',
  groups: Mapping[str, Sequence[Sequence[int]]] | None = None,
) -> dict[str, list[float]]:
  """Each head's accuracy among the videos of each true class of every other head: where a
  model's accuracy on one head comes from, e.g. synthcl2's modifier on the 'move' and 'drag'
  videos (a direction) against 'touch' and 'sweep' (a stroke count).

  logits: head -> [videos, time, classes]; labels: head -> int [videos]; groups (optional, e.g.
  `class_groups`): '<head> by <other head>' -> groups of the other head's classes, to measure
  the accuracy among the videos of each group instead of each class, for those pairs only.
  Returns {'<head> by <other head>': [accuracy in [0, 1] per class (group) of the other head,
  NaN where there are no videos]}, for every ordered pair of heads (empty with one head).
  """
  right = {h: voted(lg, voting_steps, rule) == np.asarray(labels[h]) for h, lg in logits.items()}
  out = {}
  for head in logits:
    for other, lg in logits.items():
      pair = f'{head} by {other}'
      if other == head or (groups is not None and pair not in groups):
        continue
      true = np.asarray(labels[other])
      sets = [[c] for c in range(lg.shape[-1])] if groups is None else groups[pair]
      among = [np.isin(true, s) for s in sets]
      out[pair] = [float(right[head][a].mean()) if a.any() else float('nan') for a in among]
  return out


def class_groups(labels: Mapping[str, np.ndarray]) -> dict[str, list[list[int]]]:
  """Each other head's classes grouped by which classes of a head their videos carry: synthcl2's
  actions 'move' and 'drag' (modifier a direction) against 'touch' and 'sweep' (a stroke count),
  and its modifiers the other way round.

  labels: head -> int [videos] (a whole dataset). Returns {'<head> by <other head>': [sorted
  classes of the other head, per group, groups in order of their first class]}, only for pairs
  whose grouping says more than the classes one by one (at least two groups, one of them with
  two or more classes).
  """
  out = {}
  for head, a in labels.items():
    for other, b in labels.items():
      if other == head:
        continue
      carried: dict[frozenset, list[int]] = {}
      for c in np.unique(np.asarray(b)).tolist():
        carried.setdefault(frozenset(np.unique(np.asarray(a)[b == c]).tolist()), []).append(c)
      sets = list(carried.values())
      if len(sets) > 1 and any(len(s) > 1 for s in sets):
        out[f'{head} by {other}'] = sets
  return out


def loso_ridge_accuracy(
  features: np.ndarray, targets: np.ndarray, subjects: np.ndarray, classes: int, l2: float = 10.0
) -> float:
  """Leave-one-subject-out accuracy of a one-vs-rest ridge classifier (a linear probe).

  features: [videos, features]; targets: int [videos] in [0, classes); subjects: [videos].
  Features are standardised over all videos (no labels used), a bias is appended, and per
  held-out subject the ridge solution with penalty `l2` is fitted on the others. Returns the
  fraction of videos classified correctly, over all folds.
  """
  x = (features - features.mean(0)) / (features.std(0) + 1e-6)
  x = np.concatenate([x, np.ones((len(x), 1))], 1)
  y = np.eye(classes)[targets]
  correct = 0
  for s in np.unique(subjects):
    tr, te = subjects != s, subjects == s
    w = np.linalg.solve(x[tr].T @ x[tr] + l2 * np.eye(x.shape[1]), x[tr].T @ y[tr])
    correct += int(((x[te] @ w).argmax(1) == targets[te]).sum())
  return correct / len(targets)


def analysis_layer(cfg) -> str:
  """The layer whose activations are analysed (Sec. III.B): MSTRNN: the top context layer's
  context units ('context2' in the paper); MSTNN: the top leaky conv layer ('conv2'); LRCN: the
  top LSTM layer ('lstm2'). cfg: a `configs.ModelConfig`."""
  if cfg.model == 'mstrnn':
    return f'context{cfg.num_layers}'
  if cfg.model == 'mstnn':
    return f'conv{cfg.num_layers}'
  return f'lstm{len(cfg.lstm_widths)}'


def video_names(
  class_names: Mapping[str, Sequence[str]], labels: Mapping[str, np.ndarray]
) -> list[str]:
  """One name per video: its class names over the heads (in head order) joined by '-', e.g.
  'OH-JP-JP' (synth3a, one head) or 'laptop-sweep' (synthcl1: ADO, action)."""
  heads = list(labels)
  n = len(np.asarray(labels[heads[0]]))
  return ['-'.join(class_names[h][int(labels[h][i])] for h in heads) for i in range(n)]


def _video_forward(
  cfg,
  layer: str,
  crop_size: int,
  params,
  batch_stats,
  taus: jax.Array,
  videos_u8: jax.Array,
  index: jax.Array,
):
  """Eval-mode forward of one stored video: `videos_u8[index]` [time, H, W, 3] uint8, centre
  cropped to `crop_size`. Returns (logits {head: [time, classes]}, activations of `layer`
  flattened to [time, features])."""
  from mstrnn_jax import models
  from mstrnn_jax.data import pipeline

  video = pipeline.to_float(pipeline.center_crop(videos_u8[index][None], crop_size))
  out = models.apply(cfg, params, batch_stats, video, taus, train=False, return_activations=True)
  act = out.activations[layer][0]
  return {h: lg[0] for h, lg in out.logits.items()}, act.reshape(act.shape[0], -1)


@functools.partial(jax.jit, static_argnames=('cfg', 'crop_size', 'batch_size'))
def logits_over_runs(
  cfg,
  crop_size: int,
  batch_size: int,
  params,
  batch_stats,
  taus: jax.Array,
  videos_u8: jax.Array,
  indices: jax.Array,
) -> dict[str, jax.Array]:
  """Logits of every run on its own test videos, one compiled program (`lax.map` over runs).

  params, batch_stats: stacked [runs, ...]; taus: [runs, len(cfg.taus)]; indices: int
  [runs, n] (per run the dataset indices of its held-out videos, padded by repetition).
  Returns {head: [runs, n, time, classes]}.
  """

  # The activations are unused here; XLA drops their computation.
  return _forward_over_runs(
    cfg,
    analysis_layer(cfg),
    crop_size,
    batch_size,
    0,
    params,
    batch_stats,
    taus,
    videos_u8,
    indices,
  )


@functools.partial(jax.jit, static_argnames=('cfg', 'layer', 'crop_size', 'batch_size'))
def activations_over_runs(
  cfg,
  layer: str,
  crop_size: int,
  batch_size: int,
  params,
  batch_stats,
  taus: jax.Array,
  videos_u8: jax.Array,
  indices: jax.Array,
) -> jax.Array:
  """`layer` activations of every run on its own videos (`lax.map` over runs), as in
  `logits_over_runs`. Returns [runs, n, time, features]."""

  return _forward_over_runs(
    cfg, layer, crop_size, batch_size, 1, params, batch_stats, taus, videos_u8, indices
  )


def _forward_over_runs(
  cfg, layer, crop_size, batch_size, part, params, batch_stats, taus, videos_u8, indices
):
  """``_video_forward`` of every run on its own videos (``lax.map`` over runs, then over the
  videos ``batch_size`` at a time); ``part`` 0: the logits, 1: the ``layer`` activations."""

  def per_run(run):
    p, bs, tau, idx = run
    fn = functools.partial(_video_forward, cfg, layer, crop_size, p, bs, tau, videos_u8)
    return jax.lax.map(fn, idx, batch_size=batch_size)[part]

  return jax.lax.map(per_run, (params, batch_stats, taus, indices))


def _select_runs(
  runs: list[dict], model: str, taus: Sequence[float] | None, where: str
) -> list[dict]:
  """The runs of one tau tuple (a sweep holds several; LRCN has none)."""
  tuples = list(dict.fromkeys(tuple(r['taus']) for r in runs))
  if len(tuples) == 1:
    chosen = tuples[0]
  elif taus is None:
    raise ValueError(
      f'mstrnn_jax/analysis.py: {where} holds {model} runs for several tau tuples '
      f'{tuples}; choose one with --taus (e.g. --taus={",".join(map(str, tuples[0]))}).'
    )
  else:
    chosen = tuple(float(t) for t in taus)
    if chosen not in tuples:
      raise ValueError(
        f'mstrnn_jax/analysis.py: {where} has no {model} runs with taus {chosen}; '
        f'it holds {tuples}.'
      )
  return [r for r in runs if tuple(r['taus']) == chosen]


def _stacked_test_indices(
  subjects: np.ndarray, test_subjects: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
  """[runs, n] dataset indices of each run's held-out videos (padded with its first one) + mask."""
  per_run = [np.nonzero(subjects == s)[0] for s in test_subjects]
  n = max(len(i) for i in per_run)
  idx = np.stack([np.concatenate([i, np.full(n - len(i), i[0])]) for i in per_run]).astype(np.int32)
  mask = np.stack([np.arange(n) < len(i) for i in per_run])
  return idx, mask


def _per_fold_selection(
  names: Sequence[str],
  subjects: np.ndarray,
  test_subjects: Sequence[int],
  sequences: Sequence[str],
  subject_names: Sequence[str],
) -> tuple[np.ndarray, dict[str, list[int]]]:
  """[runs, n] indices of each run's held-out videos of `sequences` (per sequence, the first m
  videos, m = the fewest any held-out subject has) and each sequence's positions in a row."""
  per_seq = {}
  for seq in sequences:
    hits = [
      [int(i) for i in np.nonzero(subjects == s)[0] if names[i] == seq] for s in test_subjects
    ]
    missing = [subject_names[s] for s, h in zip(test_subjects, hits) if not h]
    if missing:
      raise ValueError(
        f'mstrnn_jax/analysis.py: held-out subjects {missing} have no video named '
        f'{seq!r}; choose --sequences that every subject performed.'
      )
    m = min(len(h) for h in hits)
    per_seq[seq] = [h[:m] for h in hits]
  rows = [sum((per_seq[seq][r] for seq in sequences), []) for r in range(len(test_subjects))]
  groups, start = {}, 0
  for seq in sequences:
    m = len(per_seq[seq][0])
    groups[seq] = list(range(start, start + m))
    start += m
  return np.asarray(rows, np.int32), groups


def load_workdir_data(record: dict, data_dir: str | None):
  """The dataset a workdir was trained on, as its experiment config loads it."""
  from mstrnn_jax import experiment_configs
  from mstrnn_jax import plan

  config = experiment_configs.from_dict(record['experiment'])
  return by_fold(plan.load_data(config, data_dir), config.get('folds'))


def by_fold(ds, folds: int | None):
  """`ds` with its subjects replaced by the `folds` LOSO groups (`pipeline.subject_groups`; names
  joined by '+'), so that a fold number indexes `ds.subject_names`; `ds` itself when None."""
  import dataclasses

  from mstrnn_jax.data import pipeline

  if folds is None:
    return ds
  groups = pipeline.subject_groups(ds.num_subjects, folds)
  fold_of = np.empty(ds.num_subjects, np.int32)
  for k, group in enumerate(groups):
    fold_of[list(group)] = k
  return dataclasses.replace(
    ds,
    subjects=fold_of[ds.subjects],
    subject_names=['+'.join(str(ds.subject_names[s]) for s in g) for g in groups],
  )


def default_sequences(
  dataset: str,
  names: Sequence[str],
  subjects: np.ndarray,
  labels: Mapping[str, np.ndarray],
  limit: int = 6,
) -> list[str]:
  """`DEFAULT_SEQUENCES[dataset]`, else the dataset's own classes: the first `limit` video names
  (in class order) that every subject has."""
  if dataset in DEFAULT_SEQUENCES:
    return list(DEFAULT_SEQUENCES[dataset])
  common = set.intersection(
    *({names[i] for i in np.nonzero(subjects == s)[0]} for s in np.unique(subjects))
  )
  order = {}
  for i, name in enumerate(names):
    order.setdefault(name, tuple(int(labels[h][i]) for h in labels))
  return sorted(common, key=order.__getitem__)[:limit]


def analyze_run(
  workdir: str,
  fold: int,
  sequences: Sequence[str] | None = None,
  *,
  models: Sequence[str] | None = None,
  taus: Sequence[float] | None = None,
  epoch: int | None = None,
  data_dir: str | None = None,
  out_dir: str | None = None,
  n_components: int = 3,
  batch_size: int = 16,
) -> dict:
  """The Fig. 5 / Fig. 8 analysis and the early-recognition curves of a trained workdir.

  For each model of the workdir (written by experiments/run.py or sweep.py): loads its
  checkpoint (`checkpoint.load_run`) and runs, for every fold, the `sequences` (video names as in
  `video_names`; default `default_sequences`: `DEFAULT_SEQUENCES[dataset]`, else the
  dataset's own classes) of its held-out subject (or subject group with `config.folds`) through its model
  (per name, every subject contributes the same number of videos: the fewest any has). Fold
  `fold`'s trajectories of the `analysis_layer` are projected by PCA (fitted over all their time
  steps) and drawn; the end-point separation of every sequence from the first one is measured for
  that fold (in the activation and in the PCA space) and over all folds (activation space, mean
  +- SE). Early recognition: accuracy per time step over the held-out videos of every fold; the
  accuracy of each part of the category and each head's confusion matrix over the same videos.
  `taus` selects one tau tuple of a sweep.

  Writes to `out_dir` (default `<workdir>/analysis/fold<fold>/`): `pca_trajectories.png`,
  `early_recognition.png`, `analysis.json`, `analysis.md`. Returns the `analysis.json` dict.
  """
  import json
  import os

  from mstrnn_jax import checkpoint
  from mstrnn_jax import plots
  from mstrnn_jax.workdir import check_writable, write_atomic

  out_dir = out_dir or os.path.join(workdir, 'analysis', f'fold{fold}')
  check_writable(out_dir, '--out_dir')
  first = checkpoint.load_run(workdir, None if models is None else models[0], epoch)
  record = first.experiment
  models = list(record['models']) if models is None else list(models)
  loaded = {m: first if m == models[0] else checkpoint.load_run(workdir, m, epoch) for m in models}
  dataset = first.dataset
  ds = load_workdir_data(record, data_dir)
  voting_steps = int(record['experiment']['voting_steps'])
  vote_rule = record['experiment'].get('vote_rule', 'vote')
  if not 0 <= fold < len(ds.subject_names):
    raise ValueError(
      f'mstrnn_jax/analysis.py: --fold={fold} is not a subject of {dataset} '
      f'(folds 0..{len(ds.subject_names) - 1}).'
    )
  names = video_names(ds.class_names, ds.labels)
  test_idx = np.nonzero(ds.subjects == fold)[0]
  if sequences is None:
    sequences = default_sequences(dataset, names, ds.subjects, ds.labels)
  sequences = list(dict.fromkeys(sequences))
  if len(sequences) < 2:
    raise ValueError(
      'mstrnn_jax/analysis.py: give at least two --sequences (the first is the '
      'reference of the end-point separation).'
    )
  for seq in sequences:
    if not any(names[i] == seq for i in test_idx):
      raise ValueError(
        f'mstrnn_jax/analysis.py: subject {ds.subject_names[fold]} (fold {fold}) of '
        f'{dataset} has no video named {seq!r}; its videos are '
        f'{sorted(set(names[i] for i in test_idx))}.'
      )
  videos = jnp.asarray(ds.videos)
  labels = {h: np.asarray(v) for h, v in ds.labels.items()}

  result = {
    'workdir': os.path.abspath(workdir),
    'dataset': dataset,
    'fold': fold,
    'test_subject': str(ds.subject_names[fold]),
    'sequences': sequences,
    'voting_steps': voting_steps,
    'reference': sequences[0],
    'class_names': {h: [str(n) for n in ds.class_names[h]] for h, _ in ds.heads},
    'class_groups': class_groups({h: labels[h] for h, _ in ds.heads}),
    'models': {},
  }
  projections, explained, curves = {}, {}, {}
  for m in models:
    run = loaded[m]
    cfg = run.model_cfg
    layer = analysis_layer(cfg)
    runs = _select_runs(record['runs_by_model'][m], m, taus, workdir)
    subjects = [r['test_subject'] for r in runs]
    if fold not in subjects:
      raise ValueError(
        f'mstrnn_jax/analysis.py: {workdir} has no {m} run holding out subject {fold}; '
        f'its runs hold out {sorted(subjects)}.'
      )
    k = subjects.index(fold)
    rows = np.asarray([r['run'] for r in runs])
    stack = lambda tree: jax.tree.map(lambda x: x[rows], tree)  # noqa: E731
    run_params, run_stats = stack(run.params), stack(run.batch_stats)
    run_taus = jnp.asarray([r['taus'] for r in runs], jnp.float32).reshape(len(runs), -1)
    # Trajectories of every fold's model on its own held-out subject's sequences.
    sel_idx, groups = _per_fold_selection(names, ds.subjects, subjects, sequences, ds.subject_names)
    acts = np.asarray(
      activations_over_runs(
        cfg,
        layer,
        ds.crop_size,
        batch_size,
        run_params,
        run_stats,
        run_taus,
        videos,
        jnp.asarray(sel_idx),
      )
    )
    # The figure's fold: PCA and separation in both spaces.
    pca = fit_pca(acts[k].reshape(-1, acts.shape[-1]), n_components)
    proj = pca_transform(pca, acts[k])
    ref = groups[sequences[0]]
    separation = {}
    for seq in sequences[1:]:
      per_fold = [endpoint_separation(a, ref, groups[seq]) for a in acts]
      separation[seq] = {
        'activations': per_fold[k],
        'pca': endpoint_separation(proj, ref, groups[seq]),
        'folds': {**over_folds(per_fold), 'subjects': subjects},
      }
    # Early recognition over the held-out videos of every fold.
    idx, mask = _stacked_test_indices(ds.subjects, subjects)
    logits = logits_over_runs(
      cfg, ds.crop_size, batch_size, run_params, run_stats, run_taus, videos, jnp.asarray(idx)
    )
    held_out = {h: np.asarray(lg)[mask] for h, lg in logits.items()}
    held_out_labels = {h: labels[h][idx[mask]] for h in logits}
    curve = early_recognition(held_out, held_out_labels)
    matrices = confusion(held_out, held_out_labels, dict(ds.heads), voting_steps, vote_rule)
    fold_logits = [
      {h: np.asarray(lg)[r][mask[r]] for h, lg in logits.items()} for r in range(len(runs))
    ]
    fold_labels = [{h: labels[h][idx[r][mask[r]]] for h in logits} for r in range(len(runs))]
    per_fold_parts = [
      part_accuracy(lg, lb, ds.class_names, voting_steps, vote_rule)
      for lg, lb in zip(fold_logits, fold_labels)
    ]
    per_fold_by_class = [
      accuracy_by_class(lg, lb, voting_steps, vote_rule) for lg, lb in zip(fold_logits, fold_labels)
    ]
    per_fold_by_group = [
      accuracy_by_class(lg, lb, voting_steps, vote_rule, result['class_groups'])
      for lg, lb in zip(fold_logits, fold_labels)
    ]
    title = MODEL_TITLES.get(m, m)
    projections[title], explained[title], curves[title] = proj, pca.explained_variance_ratio, curve
    result['videos'] = {seq: sel_idx[k][g].tolist() for seq, g in groups.items()}
    result['models'][m] = {
      'layer': layer,
      'run': int(rows[k]),
      'taus': runs[k]['taus'],
      'epoch': run.epoch,
      'explained_variance_ratio': np.asarray(pca.explained_variance_ratio).tolist(),
      'separation': separation,
      'early_recognition': {
        'videos': int(mask.sum()),
        'folds': len(runs),
        'accuracy': {h: c.tolist() for h, c in curve.items()},
      },
      'part_accuracy': {
        part: over_folds([f[part] for f in per_fold_parts]) for part in per_fold_parts[0]
      },
      'confusion': {h: c.tolist() for h, c in matrices.items()},
      'accuracy_by_class': _by_class_over_folds(per_fold_by_class),
      'accuracy_by_group': _by_class_over_folds(per_fold_by_group),
    }

  os.makedirs(out_dir, exist_ok=True)
  traj_names = [seq for seq in sequences for _ in groups[seq]]
  fig = plots.plot_pca_trajectories(
    projections,
    traj_names,
    voting_steps,
    explained,
    title=f'{dataset}, held-out {ds.subject_names[fold]}: PCA trajectories',
  )
  plots.save(fig, os.path.join(out_dir, 'pca_trajectories.png'))
  chance = {h: 1.0 / k for h, k in ds.heads}
  fig = plots.plot_early_recognition(
    curves,
    voting_steps,
    chance,
    title=f'{dataset}: accuracy per time step, held-out videos of all folds',
  )
  plots.save(fig, os.path.join(out_dir, 'early_recognition.png'))
  result['files'] = {
    k: os.path.join(out_dir, v)
    for k, v in (
      ('pca', 'pca_trajectories.png'),
      ('early', 'early_recognition.png'),
      ('json', 'analysis.json'),
      ('markdown', 'analysis.md'),
    )
  }
  write_atomic(result['files']['json'], json.dumps(result, indent=1))
  write_atomic(result['files']['markdown'], analysis_markdown(result, curves))
  return result


def over_folds(per_fold: Sequence[float]) -> dict:
  """`{'mean', 'se', 'per_fold'}` of one measure over folds (`evaluate.mean_se`)."""
  from mstrnn_jax import evaluate

  mean, se = evaluate.mean_se(per_fold)
  return {'mean': mean, 'se': se, 'per_fold': list(per_fold)}


def _over_folds_present(per_fold: Sequence[float]) -> dict:
  """`over_folds` of the folds where the measure exists (not NaN); mean and SE NaN if none."""
  present = [v for v in per_fold if not np.isnan(v)]
  if not present:
    return {'mean': float('nan'), 'se': float('nan'), 'per_fold': list(per_fold)}
  return {**over_folds(present), 'per_fold': list(per_fold)}


def _by_class_over_folds(per_fold: Sequence[dict[str, list[float]]]) -> dict[str, list[dict]]:
  """`accuracy_by_class` of every fold -> per pair and class (group), `_over_folds_present`."""
  return {
    pair: [_over_folds_present([f[pair][c] for f in per_fold]) for c in range(len(v))]
    for pair, v in per_fold[0].items()
  }


def analysis_markdown(result: dict, curves: Mapping[str, Mapping[str, np.ndarray]]) -> str:
  """The Markdown report of `analyze_run` (tables of separation, variance and early recognition)."""
  models = list(result['models'])
  titles = [MODEL_TITLES.get(m, m) for m in models]
  ref = result['reference']
  out = [
    f'# PCA trajectories and early recognition: {result["dataset"]}, fold {result["fold"]} '
    f'(held-out {result["test_subject"]})',
    '',
    '![PCA trajectories](pca_trajectories.png)',
    '',
    'Layers: '
    + ', '.join(
      f'{t} `{result["models"][m]["layer"]}` (PC1-3 explain '
      f'{100 * sum(result["models"][m]["explained_variance_ratio"][:3]):.0f}%)'
      for m, t in zip(models, titles)
    )
    + '.',
    '',
    f'## End-point separation from {ref}',
    '',
    f'Distance between the end point (last time step) of each sequence and that of {ref} '
    '(mean end point when a name has several videos), divided by the RMS distance of all '
    "trajectory points from their mean, in the layer's activation space (in brackets: in the "
    'PCA space of the figure). Near 0: the end points converged (what came first is '
    "forgotten). First for the figure's fold, then over the held-out subjects of all folds "
    "(the trajectories of each fold's own model).",
    '',
    *_header(['sequence', *titles]),
  ]
  for seq in result['sequences'][1:]:
    cells = [
      f'{s["activations"]:.3f} ({s["pca"]:.3f})'
      for s in (result['models'][m]['separation'][seq] for m in models)
    ]
    out.append(f'| {seq} (fold {result["fold"]}) | ' + ' | '.join(cells) + ' |')
  for seq in result['sequences'][1:]:
    folds = [result['models'][m]['separation'][seq]['folds'] for m in models]
    out.append(
      f'| {seq} (all {len(folds[0]["per_fold"])} folds, mean ± SE) | '
      + ' | '.join(f'{f["mean"]:.3f} ± {f["se"]:.3f}' for f in folds)
      + ' |'
    )
  er = result['models'][models[0]]['early_recognition']
  out += [
    '',
    f'## Early recognition ({er["videos"]} held-out videos over {er["folds"]} folds)',
    '',
    '![early recognition](early_recognition.png)',
    '',
    early_recognition_table(curves, result['voting_steps']),
    part_accuracy_table(result),
    accuracy_by_class_table(result),
    confusion_table(result),
  ]
  return '\n'.join(out)


def part_accuracy_table(result: dict) -> str:
  """Markdown section of `analyze_run`'s per-part accuracies (`part_accuracy`), one row a model."""
  models = list(result['models'])
  first = result['models'][models[0]]
  parts = list(first['part_accuracy'])
  lines = [
    f'## Accuracy of each part of the category ({first["early_recognition"]["videos"]} held-out '
    f'videos, mean ± SE over {first["early_recognition"]["folds"]} folds)',
    '',
    f'Voted over the last {result["voting_steps"]} steps. For a composition (a class name such as '
    "'OH-JP-JP') each position is scored alone: a model that keeps only the last primitive is at "
    'chance on the first.',
    '',
    *_header(['model', *parts]),
  ]
  for m in models:
    acc = result['models'][m]['part_accuracy']
    lines.append(_row([MODEL_TITLES.get(m, m)], [acc[p] for p in parts]))
  return '\n'.join(lines) + '\n'


def _header(columns: Sequence[str]) -> list[str]:
  """A Markdown table's first two lines: the column names and the separator."""
  return ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]


def _row(labels: Sequence[str], cells: Sequence[dict]) -> str:
  """A Markdown table row: ``labels``, then each `over_folds` cell as 'mean ± SE' in percent."""
  return (
    '| '
    + ' | '.join([*labels, *(f'{100 * x["mean"]:.1f} ± {100 * x["se"]:.1f}' for x in cells)])
    + ' |'
  )


def accuracy_by_class_table(result: dict) -> str:
  """Markdown section of `analyze_run`'s `accuracy_by_class`: per pair of heads, one row per class
  of the second, each model's accuracy on the first (mean ± SE over folds); '' with one head."""
  models = list(result['models'])
  pairs = list(result['models'][models[0]].get('accuracy_by_class', {}))
  if not pairs:
    return ''
  titles = [MODEL_TITLES.get(m, m) for m in models]
  lines = [
    '## Accuracy of each head by the true class of another (held-out videos, mean ± SE over folds)',
    '',
    "Where a head's accuracy comes from: e.g. the modifier on the videos of each action. Rows "
    "'in' pool the classes whose videos carry the same classes of the first head (`class_groups`). "
    'Full per-fold values: `accuracy_by_class` and `accuracy_by_group` in analysis.json.',
    '',
    *_header(['head', 'videos of', *titles]),
  ]
  names = result['class_names']
  for pair in pairs:
    head, other = pair.split(' by ')
    for c, name in enumerate(names[other]):
      cells = [result['models'][m]['accuracy_by_class'][pair][c] for m in models]
      lines.append(_row([head, f'{other} = {name}'], cells))
    for g, group in enumerate(result.get('class_groups', {}).get(pair, [])):
      cells = [result['models'][m]['accuracy_by_group'][pair][g] for m in models]
      lines.append(_row([head, f'{other} in {", ".join(names[other][c] for c in group)}'], cells))
  return '\n'.join(lines) + '\n'


def confusion_table(result: dict) -> str:
  """Markdown section of `analyze_run`'s confusion matrices: per head, each true class's recall
  per model and the wrong class it is most often given (full matrices in analysis.json)."""
  models = list(result['models'])
  titles = [MODEL_TITLES.get(m, m) for m in models]
  lines = [
    '## Which classes are confused (held-out videos of all folds)',
    '',
    'Per true class: the share of its videos given that class (recall, %) and, in brackets, the '
    'wrong class it is given most often with its count. Full matrices (rows true, columns '
    'predicted): `confusion` in analysis.json.',
  ]
  for head, names in result['class_names'].items():
    mats = [np.asarray(result['models'][m]['confusion'][head]) for m in models]
    lines += ['', f'**{head}**', '', *_header(['true class', 'videos', *titles])]
    for c, name in enumerate(names):
      cells = []
      for mat in mats:
        row = mat[c]
        wrong = row.copy()
        wrong[c] = 0
        worst = int(np.argmax(wrong))
        recall = 100 * row[c] / max(row.sum(), 1)
        cells.append(
          f'{recall:.1f}' + (f' ({names[worst]} {wrong[worst]})' if wrong[worst] else '')
        )
      lines.append(f'| {name} | {int(mats[0][c].sum())} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'
