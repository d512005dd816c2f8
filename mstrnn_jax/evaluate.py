"""Voting-period prediction, accuracies, best-epoch selection and the paper's tables.

Prediction rule over the voting period (the last L time steps, Sec. II.E), selectable:

* ``'vote'`` (default): majority vote of the per-step argmax; a tie goes to the lowest class
  index among the tied classes.
* ``'mean_prob'``: argmax of the softmax probabilities averaged over the voting period.

Per head a video is right when its predicted class equals the label; *joint* is right when every
head is right (for a one-head dataset joint == that head).  LOSO (Sec. II.F): per fold the epoch
with the best joint test accuracy is selected (the earliest on ties) and every head's accuracy at
that epoch is reported; the final figures are mean +- standard error (sample std / sqrt(folds))
across folds, in percent, rounded to two decimals.

That protocol selects on the held-out subject itself.  Side by side (``SELECTIONS``) the
summaries also report the test accuracy at the epoch with the best joint accuracy on
*validation* subjects (subjects taken out of each fold's training set,
:func:`validation_subjects`) and at the last epoch: neither looks at the test subject.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

VOTE_RULES = ('vote', 'mean_prob')
JOINT = 'joint'
# How the reported epoch of a fold is chosen: the paper's protocol (best joint accuracy on the
# test subject), best joint accuracy on the validation subjects, the last epoch.
SELECTIONS = ('test_best', 'validation', 'last')
SELECTION_LABELS = {
  'test_best': 'best epoch on the test subject (paper)',
  'validation': 'epoch chosen on validation subjects',
  'last': 'last epoch',
}


def predict(logits: jax.Array, rule: str = 'vote') -> jax.Array:
  """Class prediction from voting-period logits.

  Args:
    logits: float [..., L, classes] (the voting period only).
    rule: 'vote' or 'mean_prob' (module docstring).
  Returns:
    int32 [...].
  """
  n_classes = logits.shape[-1]
  if rule == 'vote':
    votes = jax.nn.one_hot(jnp.argmax(logits, axis=-1), n_classes, dtype=jnp.int32).sum(axis=-2)
    return jnp.argmax(votes, axis=-1).astype(jnp.int32)
  if rule == 'mean_prob':
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).mean(axis=-2)
    return jnp.argmax(probs, axis=-1).astype(jnp.int32)
  raise ValueError(f'Unknown vote rule {rule!r}; use one of {VOTE_RULES}.')


def correct_flags(
  logits: Mapping[str, jax.Array],
  labels: jax.Array,
  heads: Sequence[tuple[str, int]],
  voting_steps: int,
  rule: str = 'vote',
) -> jax.Array:
  """Per-video correctness of every head and of the joint category.

  Args:
    logits: dict head -> float [batch, time, classes] (time >= voting_steps; the last
      ``voting_steps`` steps are used).
    labels: int32 [batch, n_heads], columns ordered like ``heads``.
  Returns:
    int32 [batch, n_heads + 1]: 1 where right; the last column is the joint category.
  """
  chex.assert_rank(labels, 2)
  per_head = []
  for h, (name, _) in enumerate(heads):
    pred = predict(logits[name][:, -voting_steps:], rule)
    per_head.append(pred == labels[:, h])
  per_head = jnp.stack(per_head, axis=-1)
  joint = jnp.all(per_head, axis=-1, keepdims=True)
  return jnp.concatenate([per_head, joint], axis=-1).astype(jnp.int32)


def accuracies(flags: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Percent accuracy of every head and joint.

  Args:
    flags: int [R, n, n_heads + 1] from :func:`correct_flags`.
    mask: bool [R, n], valid videos.
  Returns:
    float64 [R, n_heads + 1] in percent.
  """
  flags = np.asarray(flags, np.float64)
  mask = np.asarray(mask, np.float64)
  n = mask.sum(axis=1)
  if np.any(n == 0):
    raise ValueError('accuracies: a run has no test videos (empty held-out subject).')
  return 100.0 * (flags * mask[..., None]).sum(axis=1) / n[:, None]


def select_best_epochs(test_acc: np.ndarray) -> np.ndarray:
  """Index of the epoch with the best joint accuracy per run (earliest on ties).

  Args:
    test_acc: float [R, epochs, n_heads + 1] (joint last).
  Returns:
    int [R].
  """
  return np.argmax(np.asarray(test_acc)[..., -1], axis=1)


def validation_subjects(
  train_subjects: Sequence[int], k: int, seed: int, fold: int
) -> tuple[int, ...]:
  """``k`` validation subjects of a fold, drawn from its training subjects by ``seed`` and the
  fold's id (its test subject), deterministically; sorted."""
  train_subjects = sorted(int(s) for s in set(train_subjects))
  if not 0 <= k < len(train_subjects):
    raise ValueError(
      f'validation_subjects={k}: a fold with {len(train_subjects)} training '
      f'subjects can give 0 to {len(train_subjects) - 1} of them.'
    )
  rng = np.random.default_rng([seed, fold, 8])
  return tuple(sorted(int(s) for s in rng.choice(train_subjects, size=k, replace=False)))


def select_epochs(test_acc: np.ndarray, val_acc: np.ndarray | None = None) -> dict:
  """0-based epoch per run for each selection of :data:`SELECTIONS` (earliest on ties).

  Args:
    test_acc: float [R, epochs, n_heads + 1] (joint last).
    val_acc: float [R, epochs, n_heads + 1] on the validation subjects, or None (then no
      'validation' entry).
  Returns:
    {selection: int [R]}.
  """
  test_acc = np.asarray(test_acc)
  out = {
    'test_best': select_best_epochs(test_acc),
    'last': np.full(test_acc.shape[0], test_acc.shape[1] - 1),
  }
  if val_acc is not None:
    out['validation'] = select_best_epochs(val_acc)
  return {k: out[k] for k in SELECTIONS if k in out}


def mean_se(values: Sequence[float]) -> tuple[float, float]:
  """Mean and standard error (sample std / sqrt(n); 0 for a single value)."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    raise ValueError('mean_se of no values.')
  se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
  return float(v.mean()), se


def pool_mean_se(groups: Sequence[tuple[float, float, int]]) -> tuple[float, float]:
  """:func:`mean_se` of the union of groups known only by their ``(mean, se, n)``, as printed
  (e.g. two seeds' paired differences over 10 folds each, one of whose workdirs is gone).

  Exact by the law of total variance: with s_i = se_i sqrt(n_i), N = sum n_i and m the
  n-weighted mean, (N - 1) s^2 = sum (n_i - 1) s_i^2 + n_i (m_i - m)^2 and SE = s / sqrt(N).
  """
  if not groups or any(n < 1 for _, _, n in groups):
    raise ValueError(f'pool_mean_se needs groups of at least one value each, got {groups!r}.')
  m_i, se_i, n_i = (np.asarray(v, np.float64) for v in zip(*groups))
  total = n_i.sum()
  mean = float((n_i * m_i).sum() / total)
  if total == 1:
    return mean, 0.0
  ss = ((n_i - 1) * n_i * se_i**2 + n_i * (m_i - mean) ** 2).sum()
  return mean, float(np.sqrt(ss / (total - 1) / total))


def fmt(mean: float, se: float) -> str:
  """'89.30±4.60' (two decimals, like the paper)."""
  return f'{mean:.2f}±{se:.2f}'


def summarize_group(
  test_acc: np.ndarray, head_names: Sequence[str], val_acc: np.ndarray | None = None
) -> dict:
  """LOSO summary of the runs (folds) of one model / tau pair.

  Args:
    test_acc: float [folds, epochs, n_heads + 1] in percent (joint last).
    head_names: names of the heads, in order.
    val_acc: the same on each fold's validation subjects, or None.
  Returns:
    The paper's protocol at the top level, {'best_epoch': [folds] (1-based), 'per_fold':
    {cat: [folds]}, 'mean': {cat: m}, 'se': {cat: s}} for every head and 'joint', plus
    'selections': {selection: the same four keys} for each of :data:`SELECTIONS` available
    ('validation' only with ``val_acc``).
  """
  test_acc = np.asarray(test_acc)
  cats = list(head_names) + [JOINT]
  selections = {}
  for name, epochs in select_epochs(test_acc, val_acc).items():
    at = test_acc[np.arange(test_acc.shape[0]), epochs]  # [folds, H+1]
    entry = {'best_epoch': [int(e) + 1 for e in epochs], 'per_fold': {}, 'mean': {}, 'se': {}}
    for c, cat in enumerate(cats):
      m, s = mean_se(at[:, c])
      entry['per_fold'][cat] = [float(x) for x in at[:, c]]
      entry['mean'][cat] = m
      entry['se'][cat] = s
    selections[name] = entry
  return {**selections['test_best'], 'selections': selections}


def selection_table(summaries: Mapping[str, dict]) -> str:
  """Joint accuracy per model under each epoch selection (markdown; models as columns).

  Args:
    summaries: model name -> :func:`summarize_group` output.
  """
  models = list(summaries)
  lines = [
    '| Epoch selection | ' + ' | '.join(m.upper() for m in models) + ' |',
    '|---|' + '---|' * len(models),
  ]
  for sel in SELECTIONS:
    if not all(sel in summaries[m].get('selections', {}) for m in models):
      continue
    cells = [
      fmt(
        summaries[m]['selections'][sel]['mean'][JOINT], summaries[m]['selections'][sel]['se'][JOINT]
      )
      for m in models
    ]
    lines.append(f'| {SELECTION_LABELS[sel]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def training_table(curves: Mapping[str, Sequence[float]], points: int = 8) -> str:
  """Joint training accuracy by epoch (markdown; models as columns): has training plateaued?

  Args:
    curves: model name -> joint training accuracy per epoch, mean over folds
      (``summary['train_acc']`` of ``results.summarize_model``).
    points: about how many evenly spaced epochs to list (the last epoch always).

  Rows: those epochs, then (from 10 epochs on) the mean of the last 5 epochs, the 5 before, and
  their difference (near 0 on a plateau; still rising when clearly positive).
  """
  models = list(curves)
  n = min(len(c) for c in curves.values())

  def row(label, values, spec='.1f'):
    # round first so that a flat curve reads +0.0, never -0.0
    return f'| {label} | ' + ' | '.join(f'{round(v, 1) + 0.0:{spec}}' for v in values) + ' |'

  lines = [
    '| Epoch | ' + ' | '.join(m.upper() for m in models) + ' |',
    '|---|' + '---|' * len(models),
  ]
  step = max(1, -(-n // points))
  for e in sorted({*range(step, n + 1, step), n} - {0}):
    lines.append(row(e, [curves[m][e - 1] for m in models]))
  if n >= 10:
    last = [float(np.mean(curves[m][n - 5 : n])) for m in models]
    before = [float(np.mean(curves[m][n - 10 : n - 5])) for m in models]
    lines.append(row(f'mean of epochs {n - 4}-{n}', last))
    lines.append(row(f'mean of epochs {n - 9}-{n - 5}', before))
    lines.append(row('change (plateau: near 0)', np.subtract(last, before), '+.1f'))
  return '\n'.join(lines) + '\n'


def eval_stats_table(summaries: Mapping[str, dict], modes: Sequence[str]) -> str:
  """Joint accuracy per model under each evaluation-statistics mode (markdown): the paper's
  epoch selection, and the validation selection where available.

  Args:
    summaries: model name -> summary with ``'eval_stats': {mode: summarize_group output}``.
  """
  models = list(summaries)
  lines = [
    '| BN statistics | Epoch selection | ' + ' | '.join(m.upper() for m in models) + ' |',
    '|---|---|' + '---|' * len(models),
  ]
  for mode in modes:
    for sel, label in (('test_best', 'test subject (paper)'), ('validation', 'validation')):
      if not all(sel in summaries[m]['eval_stats'][mode]['selections'] for m in models):
        continue
      cells = [
        fmt(
          summaries[m]['eval_stats'][mode]['selections'][sel]['mean'][JOINT],
          summaries[m]['eval_stats'][mode]['selections'][sel]['se'][JOINT],
        )
        for m in models
      ]
      lines.append(f'| {mode} | {label} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def model_table(
  summaries: Mapping[str, dict], heads: Sequence[tuple[str, int]], title: str = ''
) -> str:
  """Tables III-V layout (markdown): one row pair (accuracy, chance) per category, models as
  columns.

  Args:
    summaries: model name -> :func:`summarize_group` output.
    heads: ((name, n_classes), ...).
  """
  models = list(summaries)
  lines = [f'**{title}**', ''] if title else []
  lines.append('| Category | | ' + ' | '.join(m.upper() for m in models) + ' |')
  lines.append('|---|---|' + '---|' * len(models))
  # The joint category's chance level depends on which label combinations exist: left blank.
  cats = [(n, k) for n, k in heads] + ([(JOINT, None)] if len(heads) > 1 else [])
  for name, n_classes in cats:
    accs = [fmt(summaries[m]['mean'][name], summaries[m]['se'][name]) for m in models]
    label = name.capitalize() if name != JOINT else 'Joint'
    lines.append(f'| {label} | Accuracy | ' + ' | '.join(accs) + ' |')
    if n_classes:
      lines.append(f'| | Chance level | {100.0 / n_classes:.2f} |' + ' |' * (len(models) - 1))
  return '\n'.join(lines) + '\n'


def tau_key(taus: Sequence[float]) -> str:
  """'tau1,tau2' (``%g`` each; '' for models without taus): the one key of a tau pair in
  summaries, results.json and the sweep tables and heatmaps."""
  return ','.join(f'{t:g}' for t in taus)


def sweep_table(
  summaries: Mapping[str, dict],
  tau1s: Sequence[float],
  tau2s: Sequence[float],
  heads: Sequence[tuple[str, int]],
) -> str:
  """Table VI layout (markdown): per category, rows tau1, columns tau2.

  The pairs run need not fill the grid (``config.taus`` is any list of pairs): a pair that
  was not run reads '-'.

  Args:
    summaries: :func:`tau_key` of (tau1, tau2) -> :func:`summarize_group` output.
  """
  lines = [
    '| Category | τ1 \\ τ2 | ' + ' | '.join(_num(t) for t in tau2s) + ' |',
    '|---|---|' + '---|' * len(tau2s),
  ]
  cats = [n for n, _ in heads] + ([JOINT] if len(heads) > 1 else [])
  for name in cats:
    for i, t1 in enumerate(tau1s):
      found = [summaries.get(tau_key((t1, t2))) for t2 in tau2s]
      cells = [fmt(s['mean'][name], s['se'][name]) if s else '-' for s in found]
      label = (name.capitalize() if name != JOINT else 'Joint') if i == 0 else ''
      lines.append(f'|{" " + label if label else ""} | {_num(t1)} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def _num(x: float) -> str:
  return f'{x:g}'
