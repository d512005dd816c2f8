"""Several finished (or running) workdirs side by side: one row per model and tau pair.

    rows = compare.rows(['runs/a', 'runs/b'])
    print(compare.table(rows))
    print(compare.paired_table(rows))   # every row minus the first, fold by fold

For ablations and budget studies (docs/fidelity.md): what each workdir's experiment config sets
differently from the others, the training accuracy at the end, the validation accuracy and the
test accuracy under each epoch selection, all read from ``results.json`` (nothing recomputed).
Rows that share test subjects are also compared fold by fold (:func:`paired_table`): two models
on the same folds differ less from each other than their means' standard errors suggest, and
only the paired difference says whether one is ahead.

Over the last ``window`` epochs (:data:`WINDOW`, section 0za of docs/fidelity.md) each row also
carries the held-out mean (a selection that neither peeks nor rests on one noisy epoch), the
generalisation gap (training minus held-out) and the plateau check: how much held-out and
training accuracy changed from the ``window`` epochs before, and whether that meets section
0za's plateau criterion (:func:`plateau`).  Each paired row also carries the reading rule of
sections 0zg-0zj (:func:`verdict`): ahead, behind, level or mixed at the epochs that do not
peek.  :func:`interaction` is the
difference of two paired differences, fold by fold: (A1 - A0) - (B1 - B0), e.g. whether a data
change costs MSTRNN more than it costs LRCN.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Sequence

import numpy as np
from ml_collections import config_dict

from mstrnn_jax import evaluate
from mstrnn_jax import experiment_configs as ec

LAST_EPOCHS = 5  # training accuracy: mean of the last epochs (noisy per epoch)
WINDOW = 10  # epochs of the held-out mean, the gap and the plateau check
# Per-fold quantities that rows carry and paired differences compare (after the selections).
WINDOW_KEYS = ('window', 'gap')
WINDOW_LABELS = {
  'window': 'held-out mean of the last {w} epochs',
  'gap': 'gap, training - held-out (last {w} epochs)',
}
# Section 0za's plateau criterion: over the last window, training accuracy rises by less than
# this many points and held-out accuracy changes by less than one SE (over folds).
PLATEAU_TRAIN_RISE = 2.0
# The selections the reading rule of sections 0zg-0zj reads (neither looks at the test subject).
RULE_SELECTIONS = ('validation', 'last')
# The interaction rule of sections 0zr and 0zv-0zx: the last epoch and the last-window mean.
INTERACTION_RULE = ('last', 'window')
_VERDICT_NOTE = (
  'a model is ahead when its difference is beyond one SE in its favour at both the '
  'validation-selected and the last epoch (the last alone without validation subjects), level '
  'when both are within one SE, otherwise mixed (sections 0zg-0zj of docs/fidelity.md).'
)


def _flat(tree: dict) -> dict[str, str]:
  """``ec.flat`` with each value as its JSON text (comparable and printable)."""
  return {k: json.dumps(v) for k, v in ec.flat(tree).items()}


# A results file given instead of a workdir: a workdir's results.json kept elsewhere, e.g. the
# gzipped copies of finished runs that docs/fidelity.md's sections read.
RESULTS_SUFFIXES = ('.json.gz', '.json')


def read_json(path: str) -> object:
  """The JSON in ``path``, gzipped when it ends in ``.gz``."""
  with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
    return json.load(f)


def load(workdir: str) -> dict:
  """``workdir``'s results.json, or ``workdir`` itself when it names a results file
  (:data:`RESULTS_SUFFIXES`; gzipped or not); a one-line error naming the file when there is
  none."""
  stored = workdir.endswith(RESULTS_SUFFIXES)
  path = workdir if stored else os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'{path}: no such results file.'
      if stored
      else f'{path}: no results yet; run experiments/run.py --workdir={workdir} first '
      '(results.json is written after every epoch).'
    )
  results = read_json(path)
  if not isinstance(results, dict) or not {'experiment', 'models'} <= results.keys():
    raise ValueError(
      f"{path}: not a run's results.json (no 'experiment' and 'models'); name a workdir or a "
      'copy of its results.json.'
    )
  return results


def _short(workdir: str) -> str:
  """The workdir's last path component, a results file's name without its suffix (the table's
  row label); 'a,b' for pooled workdirs."""
  names = [os.path.basename(os.path.normpath(w)) for w in workdir.split(',')]
  return ','.join(next((n[: -len(s)] for s in RESULTS_SUFFIXES if n.endswith(s)), n) for n in names)


def label(row: dict) -> str:
  """'<workdir's last component> <model>': a row's name in captions and plot legends."""
  return f'{_short(row["workdir"])} {row["model"]}'


def modes(rows_: Sequence[dict]) -> str:
  """The rows' evaluation-statistics modes, in order, once each: 'population, subject'."""
  return ', '.join(dict.fromkeys(r['eval_stats'] for r in rows_))


def category_of(rows_: Sequence[dict]) -> str:
  """The category the rows read (:func:`rows`' ``head``): 'joint' or a head's name."""
  return rows_[0].get('head', evaluate.JOINT) if rows_ else evaluate.JOINT


def accuracy_name(rows_: Sequence[dict]) -> str:
  """'joint accuracy' or '<head> accuracy', for captions and plot labels."""
  return f'{category_of(rows_)} accuracy'


def _flat_with_defaults(experiment: dict) -> dict[str, object]:
  """``experiment`` flattened (:func:`_flat`) as the engine reads a stored config
  (:func:`experiment_configs.from_dict`): a field added after the run was written takes its
  ``ADDED_FIELDS`` value (the behaviour the run had, e.g. ``data.synthcl2.count_timing``), else
  its preset's default (e.g. ``data.synth3a.clips_per_primitive=1``).  A hand-made file without
  a dataset, or one this version cannot read, is taken as it is."""
  if 'dataset' not in experiment:
    return _flat(experiment)
  try:
    return _flat(ec.to_dict(ec.from_dict(experiment)))
  except (ValueError, KeyError, TypeError):  # a preset, dataset or field this version lacks
    return _flat(experiment)


def differing_settings(experiments: Sequence[dict]) -> list[dict[str, str]]:
  """Per experiment config, the flattened fields whose values differ between the configs
  (``workdir`` excluded): ``{'width_scale': '0.25', ...}``; a field one config lacks counts at
  its default (:func:`_flat_with_defaults`)."""
  flats = [_flat_with_defaults(e) for e in experiments]
  keys = sorted(set().union(*flats))
  differ = [k for k in keys if len({f.get(k) for f in flats}) > 1]
  return [{k: f.get(k, '-') for k in differ} for f in flats]


def window_stats(test: np.ndarray, train: np.ndarray, window: int = WINDOW) -> dict:
  """Per fold, over the last ``window`` epochs of accuracy ``[folds, epochs]`` (one category).

  Returns 'per_fold:window' (held-out mean) and 'per_fold:gap' (training mean minus held-out
  mean), lists over folds; with at least ``2 * window`` epochs also 'change' and
  'train_change': (mean, se) over folds of the last window's mean minus the window before."""
  if window < 1:
    raise ValueError(f'--window={window} must be >= 1 (epochs averaged at the end of a run).')
  last_test, last_train = test[:, -window:].mean(1), train[:, -window:].mean(1)
  out = {
    'per_fold:window': last_test.tolist(),
    'per_fold:gap': (last_train - last_test).tolist(),
  }
  if test.shape[1] >= 2 * window:
    before = slice(-2 * window, -window)
    out['change'] = evaluate.mean_se(last_test - test[:, before].mean(1))
    out['train_change'] = evaluate.mean_se(last_train - train[:, before].mean(1))
  return out


def plateau_misses(row: dict) -> list[str] | None:
  """What breaks section 0za's criterion on a row of :func:`rows`, over its last window against
  the window before (means over folds): 'training rising' (by :data:`PLATEAU_TRAIN_RISE` points
  or more) and 'held-out rising' / 'held-out falling' (by one SE or more; 'held-out SE 0' when
  nothing moved with SE 0). Empty at a plateau; None under two windows of epochs."""
  if 'change' not in row:
    return None
  (held_out, se), (training, _) = row['change'], row['train_change']
  misses = ['training rising'] if training >= PLATEAU_TRAIN_RISE else []
  if abs(held_out) >= se:
    misses.append(f'held-out {"rising" if held_out > 0 else "falling" if held_out < 0 else "SE 0"}')
  return misses


def plateau(row: dict) -> bool | None:
  """Section 0za's criterion (:func:`plateau_misses` finds nothing); None under two windows."""
  misses = plateau_misses(row)
  return None if misses is None else not misses


def plateau_cell(row: dict) -> str:
  """The plateau column of :func:`table`: 'yes', '-' (under two windows of epochs), or 'no: '
  and what moved (a run still learning and one past its rise both miss the plateau)."""
  misses = plateau_misses(row)
  if misses is None:
    return '-'
  return f'no: {", ".join(misses)}' if misses else 'yes'


def _stats_mode(workdir: str, res: dict, summary: dict, mode: str | None) -> tuple:
  """(mode label, selections, history suffix) of evaluation-statistics ``mode`` (None: the
  run's first mode, whose numbers are the top-level ones); a one-line error naming the workdir
  when the run did not evaluate with ``mode``."""
  modes = res['experiment'].get('eval_stats') or []
  if mode is None or (modes and mode == modes[0]):
    return (modes[0] if modes else '-'), summary['selections'], ''
  if mode not in summary.get('eval_stats', {}):
    raise ValueError(
      f'{workdir}: no evaluation with --eval_stats={mode}; this run has '
      f'{", ".join(modes) or "only its first mode"} (config.eval_stats).'
    )
  return mode, summary['eval_stats'][mode]['selections'], f'_{mode}'


def _head_column(workdir: str, selections: dict, head: str) -> int:
  """Index of category ``head`` in the histories' last axis (the heads in order, joint last);
  a one-line error naming the workdir and its categories when it has no such head."""
  cats = list(next(iter(selections.values()))['mean'])
  if head not in cats:
    raise ValueError(f'{workdir}: no head {head!r}; this run has {", ".join(cats)} (--head).')
  return cats.index(head)


def seed_tag(experiment: dict) -> str:
  """'data 0, init 1, batches 1': the seeds a run's numbers depend on (the dataset's data seed
  and the training seeds as :func:`experiment_configs.run_seeds` resolves them), the key that
  pairs the folds of pooled rows (:func:`rows`)."""
  data = experiment.get('data', {}).get(experiment.get('dataset'), {}).get('seed', '-')
  seeds = {'init': None, 'batches': None, **(experiment.get('seeds') or {})}
  init, batches = ec.run_seeds(
    config_dict.ConfigDict({'seed': experiment.get('seed', 0), 'seeds': seeds})
  )
  return f'data {data}, init {init}, batches {"from init" if batches is None else batches}'


def _is_seed(flat_key: str) -> bool:
  """Whether a flattened experiment field (:func:`differing_settings`) is a seed, the one kind
  of field that may differ between pooled workdirs."""
  return flat_key == 'seed' or flat_key.startswith('seeds.') or flat_key.endswith('.seed')


def _member(
  workdir: str, res: dict, model: str, key: str, eval_stats: str | None, head: str
) -> dict:
  """One workdir's runs of (model, tau pair ``key``): per-fold arrays of category ``head``."""
  entry = res['models'][model]
  h = {k: np.asarray(v) for k, v in entry['history'].items()}
  summary = entry['summary'][key]
  mode, selections, suffix = _stats_mode(workdir, res, summary, eval_stats)
  c = _head_column(workdir, selections, head)
  runs = [r for r in entry['runs'] if evaluate.tau_key(r['taus']) == key]
  idx = [r['run'] for r in runs]
  val = h[f'val_acc{suffix}'][idx] if f'val_acc{suffix}' in h else None  # [folds, epochs, cats]
  return {
    'mode': mode,
    'epochs': entry['epochs_done'],
    'test_subjects': [r.get('test_subject', r['run']) for r in runs],
    'per_fold': {sel: list(s['per_fold'][head]) for sel, s in selections.items()},
    'test': h[f'test_acc{suffix}'][idx, :, c],
    'train': h['train_acc'][idx, :, c],
    'val_best': None
    if val is None
    else val[np.arange(len(idx)), evaluate.select_best_epochs(val), c],
    'val_last': None if val is None else val[:, -1, c],
  }


def _pool(spec: str, members: Sequence[dict], tags: Sequence[str]) -> dict:
  """``members`` (one per workdir of ``spec``) as one: folds concatenated; with more than one
  member each fold is keyed '<seed tag>: <subject>' so that pooled rows pair (seed, fold)."""
  if len({m['epochs'] for m in members}) > 1 or len({m['mode'] for m in members}) > 1:
    raise ValueError(
      f'{spec}: pooled workdirs differ in epochs done or statistics mode '
      f'({", ".join(str(m["epochs"]) + " " + m["mode"] for m in members)}); pool runs of one '
      'budget (--resume the shorter ones).'
    )
  if len(members) == 1:
    return dict(members[0])
  cat = lambda k: np.concatenate([m[k] for m in members])
  return {
    'mode': members[0]['mode'],
    'epochs': members[0]['epochs'],
    'test_subjects': [f'{t}: {s}' for m, t in zip(members, tags) for s in m['test_subjects']],
    'per_fold': {
      sel: [v for m in members for v in m['per_fold'][sel]]
      for sel in members[0]['per_fold']
      if all(sel in m['per_fold'] for m in members)
    },
    'test': cat('test'),
    'train': cat('train'),
    'val_best': None if members[0]['val_best'] is None else cat('val_best'),
    'val_last': None if members[0]['val_last'] is None else cat('val_last'),
  }


def rows(
  workdirs: Sequence[str],
  window: int = WINDOW,
  eval_stats: str | None = None,
  head: str = evaluate.JOINT,
) -> list[dict]:
  """One dict per (workdir, model, tau pair) with the comparison's columns (percent), and
  'curve:test' / 'curve:train', the mean over folds per epoch (:func:`plots.compare_curves`).

  A workdir given as 'runs/a,runs/b' pools the runs of several seeds into one row: its folds
  are the (seed, fold) pairs, keyed by :func:`seed_tag` and the test subject, so two pooled rows
  pair the folds of the same seeds and subject (mean ± SE over the pairs, taken as
  independent); the workdirs must have the same epochs done and different seeds.

  ``eval_stats``: which batch-norm statistics' held-out and validation accuracy to read
  ('population', 'running', 'subject'; docs/model.md); None reads each run's first mode.
  ``head``: the category whose accuracy every column reads ('joint', the default, or a head of
  the dataset such as 'ado'); epochs are selected on the joint accuracy whatever the head, as
  the paper's protocol does (:func:`evaluate.select_epochs`)."""
  groups = [spec.split(',') for spec in workdirs]
  loaded = {w: load(w) for g in groups for w in g}
  flat = dict(zip(loaded, differing_settings([r['experiment'] for r in loaded.values()])))
  out = []
  for spec, group in zip(workdirs, groups):
    tags = _pool_tags(spec, [loaded[w]['experiment'] for w in group])
    differ = {k: '|'.join(dict.fromkeys(flat[w][k] for w in group)) for k in flat[group[0]]}
    for model, entry in loaded[group[0]]['models'].items():
      for key in entry.get('summary', {}):
        for w in group[1:]:
          if key not in loaded[w]['models'].get(model, {}).get('summary', {}):
            raise ValueError(f'{w}: no {model} runs with taus {key} to pool with {group[0]}.')
        members = [_member(w, loaded[w], model, key, eval_stats, head) for w in group]
        row = {'workdir': spec, 'model': model, 'head': head, 'taus': key, 'settings': differ}
        out.append(_row(row, _pool(spec, members, tags), window))
  return out


def _pool_tags(spec: str, experiments: Sequence[dict]) -> list[str]:
  """The :func:`seed_tag` of each pooled workdir's experiment; a one-line error naming
  ``spec`` when they differ in anything but seeds or share seeds."""
  besides = [k for k in differing_settings(experiments)[0] if not _is_seed(k)]
  if besides:
    raise ValueError(
      f'{spec}: pooled workdirs differ in {", ".join(besides)} besides the seeds; pool runs '
      'of one experiment.'
    )
  tags = [seed_tag(e) for e in experiments]
  if len(set(tags)) < len(tags):
    raise ValueError(f'{spec}: pooled workdirs share seeds ({"; ".join(tags)}); pool other seeds.')
  return tags


def _row(row: dict, m: dict, window: int) -> dict:
  """``row`` (its labels) completed with the columns of pooled member ``m`` (:func:`_pool`)."""
  row.update(
    eval_stats=m['mode'],
    epochs=m['epochs'],
    folds=len(m['test_subjects']),
    test_subjects=m['test_subjects'],
    train_acc=float(m['train'][:, -LAST_EPOCHS:].mean()),
  )
  if m['val_best'] is not None:
    row['val_best'] = float(m['val_best'].mean())
    row['val_last'] = float(m['val_last'].mean())
  for sel, per_fold in m['per_fold'].items():
    row[f'test:{sel}'] = evaluate.mean_se(per_fold)
    row[f'per_fold:{sel}'] = per_fold
  row['window'] = window
  row['curve:test'] = m['test'].mean(0).tolist()
  row['curve:train'] = m['train'].mean(0).tolist()
  row.update(window_stats(m['test'], m['train'], window))
  for k in WINDOW_KEYS:
    row[f'test:{k}'] = evaluate.mean_se(row[f'per_fold:{k}'])
  row['plateau'] = plateau(row)
  return row


def table(rows_: Sequence[dict]) -> str:
  """Markdown table of :func:`rows` (accuracy in percent; test cells mean ± SE over folds)."""
  cols = [
    (f'train acc (last {LAST_EPOCHS} epochs)', lambda r: f'{r["train_acc"]:.1f}'),
    ('val acc, best epoch', lambda r: f'{r["val_best"]:.1f}' if 'val_best' in r else '-'),
    ('val acc, last epoch', lambda r: f'{r["val_last"]:.1f}' if 'val_last' in r else '-'),
  ]
  for sel in evaluate.SELECTIONS:
    cols.append(
      (
        f'test: {evaluate.SELECTION_LABELS[sel]}',
        lambda r, s=f'test:{sel}': evaluate.fmt(*r[s]) if s in r else '-',
      )
    )
  w = rows_[0]['window'] if rows_ else WINDOW
  for key in WINDOW_KEYS:
    cols.append((WINDOW_LABELS[key].format(w=w), lambda r, k=key: evaluate.fmt(*r[f'test:{k}'])))
  cols.append(('eval stats', lambda r: r['eval_stats']))
  cols.append(
    (
      f'change over the last {w} epochs, held-out / training',
      lambda r: (
        f'{_signed(*r["change"])} / {_signed(*r["train_change"])}' if 'change' in r else '-'
      ),
    )
  )
  cols.append(
    (
      f'plateau (training +<{PLATEAU_TRAIN_RISE:g}, held-out within 1 SE)',
      plateau_cell,
    )
  )
  category = category_of(rows_)
  caption = (
    []
    if category == evaluate.JOINT
    else [f'Accuracy of head {category!r} (epochs selected on the joint accuracy).', '']
  )
  lines = caption + [
    '| workdir | settings | model | taus | epochs | folds | '
    + ' | '.join(c for c, _ in cols)
    + ' |',
    '|---|---|---|---|---|---|' + '---|' * len(cols),
  ]
  for r in rows_:
    settings = ', '.join(f'{k}={v}' for k, v in r['settings'].items()) or '-'
    lines.append(
      f'| {_short(r["workdir"])} | {settings} | {r["model"]} | '
      f'{r["taus"] or "-"} | {r["epochs"]} | {r["folds"]} | '
      + ' | '.join(f(r) for _, f in cols)
      + ' |'
    )
  return '\n'.join(lines) + '\n'


def _signed(mean: float, se: float) -> str:
  """'+1.23±0.45' (a change or a difference)."""
  return f'{mean:+.2f}±{se:.2f}'


def _differences(row: dict, reference: dict) -> dict[str, dict[object, float]]:
  """Per key of :data:`evaluate.SELECTIONS` + :data:`WINDOW_KEYS` that both rows have,
  ``{test subject: row - reference}`` over the test subjects both have."""
  ref = {s: j for j, s in enumerate(reference['test_subjects'])}
  pairs = [(s, i, ref[s]) for i, s in enumerate(row['test_subjects']) if s in ref]
  out = {}
  for sel in evaluate.SELECTIONS + WINDOW_KEYS:
    key = f'per_fold:{sel}'
    if key in row and key in reference:
      out[sel] = {s: row[key][i] - reference[key][j] for s, i, j in pairs}
  return out


def difference_stats(diffs: dict[str, dict[object, float]], folds: int) -> dict:
  """{'folds': n, key: {'mean', 'se', 'sd', 'wins'}} of per-subject differences; 'wins' counts
  the folds with a difference >= 0.  Keys without folds are left out."""
  out: dict = {'folds': folds}
  for key, per_subject in diffs.items():
    if per_subject:
      d = np.array(list(per_subject.values()))
      mean, se = evaluate.mean_se(d)
      sd = se * float(np.sqrt(d.size))  # mean_se's sample SD (0 for a single fold)
      out[key] = {'mean': mean, 'se': se, 'sd': sd, 'wins': int((d >= 0).sum())}
  return out


def paired(row: dict, reference: dict) -> dict:
  """``row`` minus ``reference`` on the test subjects both have (their category, percent), per
  selection and per :data:`WINDOW_KEYS` (held-out mean and gap over the last epochs).

  Returns {'folds': n, key: {'mean', 'se', 'sd', 'wins'}} where 'wins' counts the folds
  with ``row >= reference``; a key is missing when either row lacks it or the rows share
  no test subject (different --subjects or datasets)."""
  diffs = _differences(row, reference)
  folds = len(set(row['test_subjects']) & set(reference['test_subjects']))
  return difference_stats(diffs, folds)


def sign_at_one_se(stat: dict) -> int:
  """+1 / -1 when ``stat``'s mean is beyond one SE above / below zero, else 0 (the one-SE rule
  of the study's readings); ``stat`` has 'mean' and 'se' (:func:`difference_stats`)."""
  return int(np.sign(stat['mean'])) if abs(stat['mean']) > stat['se'] else 0


def _one_se_reading(p: dict, keys: Sequence[str], names: dict[int, str]) -> str:
  """``names[sign]`` when :func:`sign_at_one_se` gives the same sign at every key of ``keys``
  that ``p`` has, 'mixed' when the signs differ, '-' when ``p`` has none of the keys."""
  signs = {sign_at_one_se(p[k]) for k in keys if k in p}
  if len(signs) != 1:
    return 'mixed' if signs else '-'
  return names[signs.pop()]


def verdict(p: dict, row: dict, reference: dict) -> str:
  """The reading rule of sections 0zg-0zj on ``p = paired(row, reference)``: '<row> ahead' when
  the paired difference is positive beyond one SE at every selection of :data:`RULE_SELECTIONS`
  that ``p`` has, '<reference> ahead' when negative beyond one SE at all, 'level' when within
  one SE at all, otherwise 'mixed'; '-' when ``p`` has none of them."""
  names = {1: f'{label(row)} ahead', -1: f'{label(reference)} ahead', 0: 'level'}
  return _one_se_reading(p, RULE_SELECTIONS, names)


def interaction_verdict(p: dict) -> str:
  """The rule of sections 0zr and 0zv-0zx on ``p = interaction(...)``: 'negative' when
  (A1 - A0) - (B1 - B0) is below zero beyond one SE at every key of :data:`INTERACTION_RULE`
  that ``p`` has, 'positive' when above beyond one SE at all, 'alike' when within one SE at all,
  otherwise 'mixed'; '-' when ``p`` has none of them."""
  return _one_se_reading(p, INTERACTION_RULE, {1: 'positive', -1: 'negative', 0: 'alike'})


def with_paired(rows_: Sequence[dict]) -> list[dict]:
  """The rows as :func:`rows` gives them, each after the first with ``'paired'``: its
  :func:`paired` difference from the first plus ``'verdict'`` (:func:`verdict`), the paired
  table's content for ``--out``'s JSON."""
  out = [dict(r) for r in rows_]
  for r in out[1:]:
    p = paired(r, out[0])
    r['paired'] = {**p, 'verdict': verdict(p, r, out[0]), 'reference': label(out[0])}
  return out


def interaction(a0: dict, a1: dict, b0: dict, b1: dict) -> dict:
  """(a1 - a0) - (b1 - b0) fold by fold over the test subjects all four rows have, in the
  form of :func:`paired`: does the change from a0 to a1 differ from the change from b0 to b1?"""
  da, db = _differences(a1, a0), _differences(b1, b0)
  common = set.intersection(*(set(r['test_subjects']) for r in (a0, a1, b0, b1)))
  diffs = {
    key: {s: da[key][s] - db[key][s] for s in sorted(common)} for key in da.keys() & db.keys()
  }
  return difference_stats(diffs, len(common))


def _paired_cells(p: dict) -> list[str]:
  return [
    f'{p[k]["mean"]:+.2f}±{p[k]["se"]:.2f} (SD {p[k]["sd"]:.1f}; {p[k]["wins"]} of {p["folds"]})'
    if k in p
    else '-'
    for k in evaluate.SELECTIONS + WINDOW_KEYS
  ]


def _paired_header(window: int, rule: str | None = None) -> list[str]:
  labels = [f'test: {evaluate.SELECTION_LABELS[s]}' for s in evaluate.SELECTIONS]
  labels += [WINDOW_LABELS[k].format(w=window) for k in WINDOW_KEYS]
  if rule:
    labels.append(f'verdict ({rule}, 1 SE)')
  return [' | '.join(labels) + ' |', '---|' * len(labels)]


def paired_table(rows_: Sequence[dict]) -> str:
  """Markdown table: every row after the first minus the first, fold by fold (the test
  subjects both have); cells 'mean±SE (SD; row >= first in k of n folds)'.  Empty string for
  fewer than two rows."""
  if len(rows_) < 2:
    return ''
  first = rows_[0]
  lines = [
    f'Paired differences, {accuracy_name(rows_)}: each row minus **{_short(first["workdir"])} '
    f'{first["model"]}** (taus {first["taus"] or "-"}), fold by fold over the test subjects '
    'both have. Cells: mean ± SE of the difference (its SD over folds; the folds where the row '
    f'is at least level with the first). Verdict: {_VERDICT_NOTE} Batch-norm statistics: '
    f'{modes(rows_)}.',
    '',
  ]
  head, rule = _paired_header(first['window'], rule='validation-selected and last epoch')
  lines += ['| workdir | model | taus | paired folds | ' + head, '|---|---|---|---|' + rule]
  for r in with_paired(rows_)[1:]:
    p = r['paired']
    cells = _paired_cells(p) + [p['verdict']]
    lines.append(
      f'| {_short(r["workdir"])} | {r["model"]} | '
      f'{r["taus"] or "-"} | {p["folds"]} | ' + ' | '.join(cells) + ' |'
    )
  return '\n'.join(lines) + '\n'


def interaction_table(rows_: Sequence[dict]) -> str:
  """Markdown table of :func:`interaction` for exactly four rows A0, A1, B0, B1 (in that
  order): (A1 - A0) - (B1 - B0) fold by fold."""
  if len(rows_) != 4:
    raise ValueError(
      f'--interaction needs exactly 4 rows (A0 A1 B0 B1), got {len(rows_)}; name the workdirs '
      'in that order, one model each.'
    )
  a0, a1, b0, b1 = rows_
  p = interaction(a0, a1, b0, b1)
  w = a0['window']
  head, rule = _paired_header(w, rule=f'last epoch and last {w} epochs')
  return (
    '\n'.join(
      [
        (
          f'Interaction, {accuracy_name(rows_)}: ({label(a1)} - {label(a0)}) - ({label(b1)} - {label(b0)}), '
          'fold by fold over the test subjects all four have. Cells as in the paired table. '
          'Verdict: negative (or positive) when the interaction is below (above) zero beyond one '
          f'SE at both the last epoch and over the last {w} epochs, alike when within one SE at '
          'both, otherwise mixed (sections 0zr, 0zv-0zx of docs/fidelity.md). '
          f'Batch-norm statistics: {modes(rows_)}.'
        ),
        '',
        '| folds | ' + head,
        '|---|' + rule,
        f'| {p["folds"]} | ' + ' | '.join(_paired_cells(p) + [interaction_verdict(p)]) + ' |',
      ]
    )
    + '\n'
  )
