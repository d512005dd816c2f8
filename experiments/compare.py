"""Workdirs side by side: settings that differ, training / validation / test accuracy.

    python experiments/compare.py runs/width8 runs/width4            # Markdown tables to stdout
    python experiments/compare.py runs/a runs/b --out=ablation.md     # also .json and .png curves
    python experiments/compare.py runs/m_fresh runs/m_reuse runs/l_fresh runs/l_reuse --interaction
    python experiments/compare.py runs/a runs/b --eval_stats=subject   # another BN-statistics mode
    python experiments/compare.py runs/a runs/b --head=ado             # one head instead of joint
    python experiments/compare.py runs/m_s0,runs/m_s1 runs/l_s0,runs/l_s1  # seeds pooled per row
    python experiments/compare.py kept/a.json.gz kept/b.json   # stored copies of results.json

Reads each workdir's results.json, or a results file named in its place (a .json or .json.gz
copy; mstrnn_jax/compare.py); never overwrites --out.  With two
or more rows a second table gives each row minus the first, fold by fold (same test subjects),
with the reading rule's verdict (also in the .json, under each row's 'paired');
with --interaction and four rows A0 A1 B0 B1, a third gives (A1 - A0) - (B1 - B0).  The last
--window epochs give the held-out mean, the gap and the plateau check.  Workdirs joined by a
comma pool runs that differ only in their seeds into one row of (seed, fold) pairs; two pooled
rows pair the folds of the same seeds and test subject.
"""

import json
import os
import sys

from absl import app
from absl import flags

from mstrnn_jax import compare, plots

_OUT = flags.DEFINE_string(
  'out', None, 'Also write the tables to this .md file, the rows to .json, the curves to .png.'
)
_WINDOW = flags.DEFINE_integer(
  'window', compare.WINDOW, 'Epochs at the end of each run: held-out mean, gap, plateau check.'
)
_EVAL_STATS = flags.DEFINE_string(
  'eval_stats',
  None,
  'Batch-norm statistics whose held-out accuracy to read (population, running, subject); '
  "default: each run's first (config.eval_stats).",
)
_HEAD = flags.DEFINE_string(
  'head',
  'joint',
  "Category whose accuracy to compare: 'joint' or a head of the dataset (e.g. ado, action); "
  'epochs are still selected on the joint accuracy.',
)
_INTERACTION = flags.DEFINE_bool(
  'interaction', False, 'Four rows A0 A1 B0 B1: also print (A1 - A0) - (B1 - B0) by fold.'
)


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    sys.exit('error: experiments/compare.py: name one or more workdirs.')
  try:
    rows = compare.rows(
      workdirs, window=_WINDOW.value, eval_stats=_EVAL_STATS.value, head=_HEAD.value
    )
    text = compare.table(rows)
    if len(rows) > 1:
      text += '\n' + compare.paired_table(rows)
    if _INTERACTION.value:
      text += '\n' + compare.interaction_table(rows)
  except (OSError, KeyError, ValueError) as e:
    sys.exit(f'error: {e}')
  print(text)
  if _OUT.value:
    stem = os.path.splitext(_OUT.value)[0]
    for path in (stem + '.md', stem + '.json', stem + '.png'):
      if os.path.exists(path):
        sys.exit(f'error: {path} exists; choose another --out (nothing is overwritten).')
    with open(stem + '.md', 'w') as f:
      f.write(text)
    with open(stem + '.json', 'w') as f:
      json.dump(compare.with_paired(rows), f, indent=1)
    title = (
      f'{compare.accuracy_name(rows)}; held-out with batch-norm statistics: {compare.modes(rows)}'
    )
    fig = plots.compare_curves(rows, compare.label, title, compare.accuracy_name(rows))
    plots.save(fig, stem + '.png')


if __name__ == '__main__':
  app.run(main)
