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
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from mstrnn_jax import evaluate, results

LAST_EPOCHS = 5  # training accuracy: mean of the last epochs (noisy per epoch)


def _flat(tree: dict, prefix: str = '') -> dict[str, object]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = json.dumps(v)
  return out


def load(workdir: str) -> dict:
  """``workdir``'s results.json; a one-line error naming the file when there is none."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'{path}: no results yet; run experiments/run.py --workdir={workdir} first '
      '(results.json is written after every epoch).'
    )
  with open(path) as f:
    return json.load(f)


def _short(workdir: str) -> str:
  """The workdir's last path component (the table's row label)."""
  return os.path.basename(os.path.normpath(workdir))


def differing_settings(experiments: Sequence[dict]) -> list[dict[str, str]]:
  """Per experiment config, the flattened fields whose values differ between the configs
  (``workdir`` excluded): ``{'width_scale': '0.25', ...}``."""
  flats = [_flat(e) for e in experiments]
  keys = sorted(set().union(*flats))
  differ = [k for k in keys if len({f.get(k) for f in flats}) > 1]
  return [{k: f.get(k, '-') for k in differ} for f in flats]


def rows(workdirs: Sequence[str]) -> list[dict]:
  """One dict per (workdir, model, tau pair) with the comparison's columns (percent, joint)."""
  loaded = [load(w) for w in workdirs]
  settings = differing_settings([r['experiment'] for r in loaded])
  out = []
  for workdir, res, differ in zip(workdirs, loaded, settings):
    for model, entry in res['models'].items():
      h = {k: np.asarray(v) for k, v in entry['history'].items()}
      for key, summary in entry.get('summary', {}).items():
        runs = [r for r in entry['runs'] if evaluate.tau_key(r['taus']) == key]
        idx = [r['run'] for r in runs]
        row = {
          'workdir': workdir,
          'model': model,
          'taus': key,
          'settings': differ,
          'epochs': entry['epochs_done'],
          'folds': len(idx),
          'test_subjects': [r.get('test_subject', r['run']) for r in runs],
          'train_acc': float(h['train_acc'][idx, -LAST_EPOCHS:, -1].mean()),
        }
        if 'val_acc' in h:
          val = h['val_acc'][idx, :, -1]
          row['val_best'] = float(val.max(axis=1).mean())
          row['val_last'] = float(val[:, -1].mean())
        for sel, s in summary['selections'].items():
          row[f'test:{sel}'] = (s['mean'][evaluate.JOINT], s['se'][evaluate.JOINT])
          row[f'per_fold:{sel}'] = s['per_fold'][evaluate.JOINT]
        out.append(row)
  return out


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
  lines = [
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


def paired(row: dict, reference: dict) -> dict:
  """``row`` minus ``reference`` on the test subjects both have, per selection (joint, percent).

  Returns {'folds': n, selection: {'mean', 'se', 'sd', 'wins'}} where 'wins' counts the folds
  with ``row >= reference``; a selection is missing when either row lacks it or the rows share
  no test subject (different --subjects or datasets)."""
  ref = {s: j for j, s in enumerate(reference['test_subjects'])}
  pairs = [(i, ref[s]) for i, s in enumerate(row['test_subjects']) if s in ref]
  out: dict = {'folds': len(pairs)}
  for sel in evaluate.SELECTIONS:
    key = f'per_fold:{sel}'
    if pairs and key in row and key in reference:
      d = np.array([row[key][i] - reference[key][j] for i, j in pairs])
      mean, se = evaluate.mean_se(d)
      sd = se * float(np.sqrt(d.size))  # mean_se's sample SD (0 for a single fold)
      out[sel] = {'mean': mean, 'se': se, 'sd': sd, 'wins': int((d >= 0).sum())}
  return out


def paired_table(rows_: Sequence[dict]) -> str:
  """Markdown table: every row after the first minus the first, fold by fold (the test
  subjects both have); cells 'mean±SE (SD; row >= first in k of n folds)'.  Empty string for
  fewer than two rows."""
  if len(rows_) < 2:
    return ''
  first = rows_[0]
  lines = [
    f'Paired differences, joint accuracy: each row minus **{_short(first["workdir"])} '
    f'{first["model"]}** (taus {first["taus"] or "-"}), fold by fold over the test subjects '
    'both have. Cells: mean ± SE of the difference (its SD over folds; the folds where the row '
    'is at least level with the first).',
    '',
    '| workdir | model | taus | paired folds | '
    + ' | '.join(f'test: {evaluate.SELECTION_LABELS[s]}' for s in evaluate.SELECTIONS)
    + ' |',
    '|---|---|---|---|' + '---|' * len(evaluate.SELECTIONS),
  ]
  for r in rows_[1:]:
    p = paired(r, first)
    cells = [
      f'{p[s]["mean"]:+.2f}±{p[s]["se"]:.2f} (SD {p[s]["sd"]:.1f}; {p[s]["wins"]} of {p["folds"]})'
      if s in p
      else '-'
      for s in evaluate.SELECTIONS
    ]
    lines.append(
      f'| {_short(r["workdir"])} | {r["model"]} | '
      f'{r["taus"] or "-"} | {p["folds"]} | ' + ' | '.join(cells) + ' |'
    )
  return '\n'.join(lines) + '\n'
