"""Paired differences between bn_probe results, fold by fold (issue 8; fidelity section 0zs).

    python benchmarks/probe_pairs.py \
      k27=docs/runs/Q3k27_lrcn_bn_probe.json.gz k27_on_k1=docs/runs/Q3k27_lrcn_bn_probe_test_k1.json.gz \
      --diff=k27_on_k1-k27

Each ``NAME=PATH`` is a ``bn_probe.json`` (``experiments/bn_probe.py``; gzipped or not), e.g. one
network probed on its own held-out videos and on another draw's (``--test_override``). Each
``--diff=A-B`` prints A minus B over the test subjects both hold, at the probe's two ends: the
held-out joint accuracy under ``population`` statistics and under the subject's own
(``subject``): mean ± SE over folds, the verdict at one SE, and the folds where A is at least
level with B; with ``--shift`` also, per BN site, how far the held-out and the training
subjects' own statistics sit from the population's in B and in A (fidelity section 0zu).
Markdown on stdout.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from mstrnn_jax import compare, evaluate

ENDS = {'population': 0, 'subject': -1}  # the probe's splice: all population .. all subject


def load(path: str) -> dict:
  """``{test subject: {end: joint accuracy, 'shift': {group: {site: {quantity: shift}}}}}`` of
  a bn_probe.json (or .json.gz); the shift (how far the held-out ('test') and training subjects'
  own statistics sit from the population's) is None where the file has none."""
  result = compare.read_json(path)
  return {
    r['test_subject']: {**{e: r['accuracy'][i] for e, i in ENDS.items()}, 'shift': r.get('shift')}
    for r in result['runs']
  }


def common_subjects(a: dict, b: dict) -> list:
  """The test subjects both probes hold, sorted; ValueError if none."""
  common = sorted(set(a) & set(b))
  if not common:
    raise ValueError('the two probes share no test subject.')
  return common


def paired(a: dict, b: dict) -> dict:
  """``a - b`` over the test subjects both hold, per end: ``compare.difference_stats``'s
  ``{'folds': n, end: {'mean', 'se', 'sd', 'wins'}}`` (wins: folds with ``a >= b``)."""
  common = common_subjects(a, b)
  diffs = {e: {s: a[s][e] - b[s][e] for s in common} for e in ENDS}
  return compare.difference_stats(diffs, len(common))


SHIFT_COLUMNS = (  # (group, quantity, header): bn_probe.shift's measures
  ('test', 'mean', 'held-out, mean'),
  ('training', 'mean', 'training, mean'),
  ('test', 'log_var', 'held-out, log var'),
  ('training', 'log_var', 'training, log var'),
)


def shift_table(name_a: str, a: dict, name_b: str, b: dict) -> str:
  """Markdown: per site, B's and A's mean shift over the common test subjects and A - B paired
  by fold (mean ± SE), for the held-out and the training subjects, both measures."""
  common = common_subjects(a, b)
  for name, x in ((name_a, a), (name_b, b)):
    if any(x[s]['shift'] is None for s in common):
      raise ValueError(f'{name} has no shift table (a bn_probe.json from an older bn_probe.py).')
  sites = list(a[common[0]]['shift']['test'])
  lines = [
    f"Shift of the subjects' own statistics from the population's, {name_b} -> {name_a} "
    f'(A - B paired by fold, mean ± SE over {len(common)} folds)',
    '',
    '| site | ' + ' | '.join(h for *_, h in SHIFT_COLUMNS) + ' |',
    '|---' * (len(SHIFT_COLUMNS) + 1) + '|',
  ]
  for site in sites:
    cells = []
    for group, quantity, _ in SHIFT_COLUMNS:
      va, vb = ([x[s]['shift'][group][site][quantity] for s in common] for x in (a, b))
      d = compare.difference_stats({'d': dict(zip(common, np.subtract(va, vb)))}, len(common))['d']
      cells.append(f'{np.mean(vb):.2f} -> {np.mean(va):.2f} ({evaluate.fmt(d["mean"], d["se"])})')
    lines.append(f'| {site} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def cell(p: dict, end: str) -> str:
  verdict = {0: 'within 1 SE', 1: 'beyond 1 SE, positive', -1: 'beyond 1 SE, negative'}
  reading = verdict[compare.sign_at_one_se(p[end])]
  mean_se = evaluate.fmt(p[end]['mean'], p[end]['se'])
  return f'{mean_se} ({reading}; {p[end]["wins"]} of {p["folds"]} at least level)'


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('probes', nargs='+', help='NAME=PATH of a bn_probe.json(.gz)')
  parser.add_argument('--diff', action='append', default=[], help='A-B: A minus B by fold')
  parser.add_argument(
    '--shift', action='store_true', help="also each --diff's per-site statistics shift, A - B"
  )
  args = parser.parse_args(argv)
  probes = {}
  for item in args.probes:
    name, eq, path = item.partition('=')
    if not eq:
      sys.exit(f'error: {item}: expected NAME=PATH, e.g. k27=runs/a/bn_probe/lrcn/bn_probe.json.')
    try:
      probes[name] = load(path)
    except (OSError, ValueError, KeyError) as e:
      sys.exit(f'error: {path}: not a readable bn_probe.json ({e}).')
  print('| probe | folds | `population` | `subject` |\n|---|---|---|---|')
  for name, p in probes.items():
    cells = [evaluate.fmt(*evaluate.mean_se([v[e] for v in p.values()])) for e in ENDS]
    print(f'| {name} | {len(p)} | ' + ' | '.join(cells) + ' |')
  if args.diff:
    print('\n| difference (paired by fold) | `population` | `subject` |\n|---|---|---|')
  for diff in args.diff:
    a, _, b = diff.partition('-')
    if a not in probes or b not in probes:
      sys.exit(f'error: --diff={diff}: name two of {sorted(probes)} as A-B.')
    p = paired(probes[a], probes[b])
    print(f'| {a} - {b} | ' + ' | '.join(cell(p, e) for e in ENDS) + ' |')
  if args.shift:
    for diff in args.diff:
      a, _, b = diff.partition('-')
      try:
        print('\n' + shift_table(a, probes[a], b, probes[b]))
      except ValueError as e:
        sys.exit(f'error: --diff={diff} --shift: {e}')


if __name__ == '__main__':
  main()
