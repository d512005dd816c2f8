"""Results of a LOSO experiment: per-epoch history, summaries, tables, CSV, TensorBoard scalars.

results.json   per model: per-run per-epoch metrics, selected epochs, summaries; the tables
results.md     the tables (Tables III-V layout; Table VI layout for sweeps)
metrics.csv    model, run, test_subject, taus, epoch, train_loss, accuracies
events/<model>/events.out.tfevents.*   the same scalars for TensorBoard (tensorboardX)
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from mstrnn_jax import evaluate
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.plan import Plan
from mstrnn_jax.workdir import write_atomic


def result(runs: list[dict], history: dict, seconds: float) -> dict:
  """history: name -> list over epochs of [R, ...] -> arrays [R, epochs, ...].

  Returns {'runs', 'epochs_done', 'seconds', 'history': {'train_loss': [R, E],
  'train_acc': [R, E, H+1], 'test_acc': [R, E, H+1]}}.
  """
  return {
    'runs': runs,
    'epochs_done': len(history['train_loss']),
    'seconds': seconds,
    'history': {
      k: np.stack(v, axis=1) if v else np.zeros((len(runs), 0)) for k, v in history.items()
    },
  }


def history_lists(h: dict) -> dict:
  return {k: np.asarray(v).tolist() for k, v in h.items()}


def summarize_model(res: dict, heads, eval_stats: Sequence[str] = ()) -> dict:
  """Per tau pair: :func:`evaluate.summarize_group` over its folds (the reported evaluation
  statistics, with the validation selection when the history has ``val_acc``), plus
  ``'eval_stats': {mode: summarize_group of test_acc_<mode>}`` and ``'train_acc'``: the joint
  training accuracy per epoch, mean over the folds.  Keys 'tau1,tau2' ('' for models without
  taus)."""
  h = res['history']
  names = [n for n, _ in heads]
  groups: dict[str, list[int]] = {}
  for r in res['runs']:
    groups.setdefault(evaluate.tau_key(r['taus']), []).append(r['run'])

  def group(idx, suffix=''):
    val = h.get(f'val_acc{suffix}')
    return evaluate.summarize_group(
      h[f'test_acc{suffix}'][idx], names, None if val is None else val[idx]
    )

  out = {}
  for k, idx in groups.items():
    out[k] = group(idx)
    out[k]['eval_stats'] = {m: group(idx, f'_{m}') for m in eval_stats if f'test_acc_{m}' in h}
    out[k]['train_acc'] = np.asarray(h['train_acc'])[idx, :, -1].mean(axis=0).tolist()
  return out


def write_results(workdir: str, p: Plan, results: dict, final: bool) -> dict:
  """Writes results.json, results.md and metrics.csv of plan ``p``; returns the results dict."""
  heads = p.dataset.heads
  out = {'experiment': ec.to_dict(p.config), 'final': final, 'models': {}, 'tables': {}}
  for model, res in results.items():
    entry = {
      'runs': res['runs'],
      'epochs_done': res['epochs_done'],
      'seconds': round(res['seconds'], 2),
      'history': history_lists(res['history']),
    }
    if res['epochs_done']:
      entry['summary'] = summarize_model(res, heads, tuple(p.config.eval_stats))
    out['models'][model] = entry
  changed = ec.changed_settings(p.config)
  md = [
    f'# {p.config.dataset}: LOSO results ({p.config.preset} preset'
    f'{", final" if final else ", in progress"})',
    '',
    f'Settings changed from the {p.config.preset} preset: '
    + (', '.join(f'`{k}={json.dumps(v)}`' for k, v in changed.items()) or 'none')
    + ' (all of them: experiment.json).',
    '',
  ]
  trained = {m: e for m, e in out['models'].items() if 'summary' in e}
  if trained:
    md += _sweep_tables(p, trained, heads, out['tables'])
    first = {m: next(iter(e['summary'].values())) for m, e in trained.items()}
    # One column per model, or per (model, tau pair) in a sweep.
    columns = {
      (f'{m} taus {k}' if len(e['summary']) > 1 else m): summary
      for m, e in trained.items()
      for k, summary in e['summary'].items()
    }
    table = evaluate.model_table(first, heads)
    out['tables']['models'] = table
    modes = tuple(p.config.eval_stats)
    md += [
      '## Accuracy in percent, mean ± standard error over folds (Tables III-V layout)',
      '',
      f'BN statistics at evaluation: `{modes[0]}` (docs/model.md); epoch per fold: the '
      "best joint accuracy on the test subject (the paper's protocol)."
      + (
        ' First tau pair of each model; every pair is in the tables below.'
        if len(columns) > len(first)
        else ''
      ),
      '',
      table,
    ]
    out['tables']['selections'] = evaluate.selection_table(columns)
    md += [
      '## Joint accuracy by epoch selection (only the first looks at the test subject; '
      'validation subjects: --config.validation_subjects)',
      '',
      out['tables']['selections'],
    ]
    if len(modes) > 1:
      out['tables']['eval_stats'] = evaluate.eval_stats_table(columns, modes)
      md += [
        '## Joint accuracy by BN statistics at evaluation (same weights)',
        '',
        out['tables']['eval_stats'],
      ]
    out['tables']['training'] = evaluate.training_table(
      {name: s['train_acc'] for name, s in columns.items()}
    )
    md += [
      '## Joint training accuracy, mean over folds: has training plateaued?',
      '',
      out['tables']['training'],
    ]
    for m, e in trained.items():
      for k, s in e['summary'].items():
        md.append(
          f'- {m}{" taus " + k if k else ""}: selected epochs per fold '
          f'{s["best_epoch"]} (of {e["epochs_done"]})'
        )
  write_atomic(os.path.join(workdir, 'results.json'), json.dumps(out, indent=1))
  write_atomic(os.path.join(workdir, 'results.md'), '\n'.join(md) + '\n')
  write_atomic(os.path.join(workdir, 'metrics.csv'), metrics_csv(results, heads))
  return out


def _sweep_tables(p: Plan, trained: dict, heads, tables: dict) -> list[str]:
  """Table VI layout (one per model with several tau pairs); fills ``tables``."""
  if p.tau_pairs is None or len(p.tau_pairs) < 2:
    return []
  md = []
  t1s = sorted({pair[0] for pair in p.tau_pairs})
  t2s = sorted({pair[1] for pair in p.tau_pairs})
  for m, e in trained.items():
    if len(e['summary']) > 1:
      tables[f'{m}_sweep'] = evaluate.sweep_table(e['summary'], t1s, t2s, heads)
      md += [
        f'## {m.upper()}: sensitivity to the time constants (Table VI layout)',
        '',
        tables[f'{m}_sweep'],
      ]
  return md


def metrics_csv(results: dict, heads) -> str:
  cats = [h for h, _ in heads] + [evaluate.JOINT]
  first = next(iter(results.values()), {'history': {}})['history']
  extra = [k for k in first if k.startswith(('test_acc_', 'val_acc')) and k != 'test_acc']
  cols = (
    ['model', 'run', 'test_subject', 'taus', 'epoch', 'train_loss']
    + [f'train_acc_{c}' for c in cats]
    + [f'test_acc_{c}' for c in cats]
    + [f'{k}_joint' for k in extra]
  )
  lines = [','.join(cols)]
  for model, res in results.items():
    h = res['history']
    for run in res['runs']:
      r = run['run']
      for e in range(res['epochs_done']):
        row = [
          model,
          r,
          run['test_subject'],
          evaluate.tau_key(run['taus']).replace(',', ' '),
          e + 1,
          f'{h["train_loss"][r, e]:.6g}',
        ]
        row += [f'{x:.4f}' for x in h['train_acc'][r, e]]
        row += [f'{x:.4f}' for x in h['test_acc'][r, e]]
        row += [f'{h[k][r, e, -1]:.4f}' for k in extra]
        lines.append(','.join(map(str, row)))
  return '\n'.join(lines) + '\n'


def epoch_scalars(runs: list[dict], history: dict, heads) -> dict[str, float]:
  """The last epoch's TensorBoard scalars: per run (subject<S>[_tau<t>...]/...) and means."""
  cats = [h for h, _ in heads] + [evaluate.JOINT]
  values = {}
  for r, run in enumerate(runs):
    tag = f'subject{run["test_subject"]}' + ''.join(f'_tau{t:g}' for t in run['taus'])
    values[f'{tag}/train_loss'] = float(history['train_loss'][-1][r])
    for c, cat in enumerate(cats):
      values[f'{tag}/test_acc_{cat}'] = float(history['test_acc'][-1][r, c])
      values[f'{tag}/train_acc_{cat}'] = float(history['train_acc'][-1][r, c])
  values['mean/test_acc_joint'] = float(np.mean(history['test_acc'][-1][:, -1]))
  values['mean/train_loss'] = float(np.mean(history['train_loss'][-1]))
  return values


class EventLog:
  """TensorBoard scalars of one model (``tensorboardX.SummaryWriter``, no TensorFlow)."""

  def __init__(self, logdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel

    self._writer = SummaryWriter(logdir)

  def scalars(self, step: int, values: dict[str, float]) -> None:
    for tag, v in values.items():
      self._writer.add_scalar(tag, v, global_step=step)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
