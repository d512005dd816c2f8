"""Paired differences between bn_probe results, fold by fold (issue 8; fidelity section 0zs).

    python benchmarks/probe_pairs.py \
      k27=docs/runs/Q3k27_lrcn_bn_probe.json.gz k27_on_k1=docs/runs/Q3k27_lrcn_bn_probe_test_k1.json.gz \
      --diff=k27_on_k1-k27

Each ``NAME=PATH`` is a ``bn_probe.json`` (``experiments/bn_probe.py``; gzipped or not), e.g. one
network probed on its own held-out videos and on another draw's (``--test_override``). Each
``--diff=A-B`` prints A minus B over the test subjects both hold, at the probe's two ends: the
held-out joint accuracy under ``population`` statistics and under the subject's own
(``subject``): mean ± SE over folds, the verdict at one SE, and the folds where A is at least
level with B. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import sys

from mstrnn_jax import compare, evaluate

ENDS = {'population': 0, 'subject': -1}  # the probe's splice: all population .. all subject


def load(path: str) -> dict:
  """``{test subject: {end: joint accuracy}}`` of a bn_probe.json (or .json.gz)."""
  result = compare.read_json(path)
  return {r['test_subject']: {e: r['accuracy'][i] for e, i in ENDS.items()} for r in result['runs']}


def paired(a: dict, b: dict) -> dict:
  """``a - b`` over the test subjects both hold, per end: ``compare.difference_stats``'s
  ``{'folds': n, end: {'mean', 'se', 'sd', 'wins'}}`` (wins: folds with ``a >= b``)."""
  common = sorted(set(a) & set(b))
  if not common:
    raise ValueError('the two probes share no test subject.')
  diffs = {e: {s: a[s][e] - b[s][e] for s in common} for e in ENDS}
  return compare.difference_stats(diffs, len(common))


def cell(p: dict, end: str) -> str:
  verdict = {0: 'within 1 SE', 1: 'beyond 1 SE, positive', -1: 'beyond 1 SE, negative'}
  reading = verdict[compare.sign_at_one_se(p[end])]
  mean_se = evaluate.fmt(p[end]['mean'], p[end]['se'])
  return f'{mean_se} ({reading}; {p[end]["wins"]} of {p["folds"]} at least level)'


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('probes', nargs='+', help='NAME=PATH of a bn_probe.json(.gz)')
  parser.add_argument('--diff', action='append', default=[], help='A-B: A minus B by fold')
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


if __name__ == '__main__':
  main()
