"""One epoch of the main job split into its two programs: training and evaluation (issue 8).

    python benchmarks/main_job_epoch.py                       # quick synth3a, 9 folds, defaults
    python benchmarks/main_job_epoch.py --preset=tiny --model=lrcn

Builds the main job's programs through ``epoch_loop.setup`` (the same path as
``experiments/run.py``), times the first call of ``train_epoch`` and ``evaluate`` (compile +
run), then the better of two further calls of each, and prints the estimate for the preset's
epochs (first calls + the rest at the steady rate; checkpoints and result files not included).
"""

from __future__ import annotations

import argparse
import time

import jax

from mstrnn_jax import epoch_loop
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.plan import plan


def timed(fn, *args):
  """(seconds, result) of one blocking call."""
  t = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return time.perf_counter() - t, out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--preset', default='quick')
  parser.add_argument('--dataset', default='synth3a')
  parser.add_argument('--model', default='mstrnn')
  args = parser.parse_args()
  c = ec.get_config(args.preset, args.dataset)
  p = plan(c)
  e = epoch_loop.setup(p, args.model)
  states = epoch_loop.initial_states(e)
  data = (e.videos, e.labels, e.tables)
  t_train0, (states, _) = timed(e.programs.train_epoch, states, *data)
  t_eval0, _ = timed(e.programs.evaluate, states, *data)
  t_train, t_eval = [], []
  for _ in range(2):
    t, (states, _) = timed(e.programs.train_epoch, states, *data)
    t_train.append(t)
    t_eval.append(timed(e.programs.evaluate, states, *data)[0])
  steady = min(t_train) + min(t_eval)
  print(
    f'{args.model} {args.dataset} {args.preset} ({len(e.runs)} runs, eval_stats '
    f'{tuple(c.eval_stats)}, population_batches {c.population_batches}): train_epoch first '
    f'{t_train0:.1f} s then {min(t_train):.2f} s; evaluate first {t_eval0:.1f} s then '
    f'{min(t_eval):.2f} s; {c.epochs} epochs ~ {t_train0 + t_eval0 + (c.epochs - 1) * steady:.0f} s'
  )


if __name__ == '__main__':
  main()
