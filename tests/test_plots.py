"""plots: Table VI heat-maps over any list of tau pairs."""

import numpy as np

from mstrnn_jax import evaluate, plots


def _summary(per_fold):
  # One epoch per fold; one head, so the joint column repeats it.
  acc = np.array([[[a, a]] for a in per_fold], float)  # [folds, epochs, heads + 1]
  return evaluate.summarize_group(acc, ['action'])


def test_tau_heatmap_leaves_pairs_not_run_blank():
  # Two pairs off each other's row and column (config.taus=((1.04,22),(2,100))): the other
  # two cells of the 2x2 grid were not run.
  summary = {'1.04,22': _summary([70.0, 80.0]), '2,100': _summary([50.0, 60.0])}
  fig = plots.tau_heatmap(summary, [1.04, 2.0], [22.0, 100.0], 'action', 'pairs')
  texts = sorted(t.get_text() for t in fig.axes[0].texts)
  assert texts == sorted(['75.00±5.00', '55.00±5.00', 'not run', 'not run'])
  image = fig.axes[0].images[0].get_array()
  assert image.mask.tolist() == [[False, True], [True, False]]
  assert image[0, 0] == 75.0 and image[1, 1] == 55.0
