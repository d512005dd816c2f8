"""From an experiment config to a finished workdir: plan, then describe (dry run) or train.

    config = experiment_configs.get_config('tiny', 'synth3a')
    launch.launch(config, workdir='/tmp/run')          # experiments/run.py does this
"""
from __future__ import annotations

import os
from typing import Callable

import jax
from ml_collections import config_dict

from mstrnn_jax import epoch_loop, results
from mstrnn_jax.plan import Plan, describe, plan, run_table
from mstrnn_jax.workdir import default_workdir, is_writer, prepare_workdir


def run_experiment(p: Plan, workdir: str, *, resume: bool = False, mesh=None,
                   progress: bool = True, log: Callable[[str], None] = print) -> dict:
  """Trains every model of ``p`` over all its runs, writes every result file, returns the
  results dict (as in results.json)."""
  from mstrnn_jax import plots  # pylint: disable=import-outside-toplevel
  prepare_workdir(workdir, p, {m: run_table(p, m) for m in p.models}, resume)
  done: dict = {}
  for model in p.models:
    def on_epoch(res, model=model):
      if is_writer():
        results.write_results(workdir, p, {**done, model: res}, final=False)
    done[model] = epoch_loop.train_model(p, model, workdir, resume=resume, mesh=mesh,
                                         progress=progress, on_epoch=on_epoch)
  if not is_writer():
    return {}
  out = results.write_results(workdir, p, done, final=True)
  plots.write_figures(workdir, out, p.dataset.heads, p.tau_pairs)
  with open(os.path.join(workdir, 'results.md')) as f:
    log(f.read())
  return out


def launch(config: config_dict.ConfigDict, *, workdir: str | None = None, resume: bool = False,
           dry_run: bool = False, data_dir: str | None = None, progress: bool = True,
           log: Callable[[str], None] = print) -> dict | None:
  """Plans (all checks before any compilation), then describes (dry run) or runs."""
  if resume and workdir is None:
    raise ValueError('--resume needs the --workdir of the run to continue.')
  p = plan(config, data_dir=data_dir)
  if dry_run:
    log(describe(p))
    return None
  workdir = workdir or default_workdir(config)
  log(f'workdir: {workdir}  ({len(p.folds)} folds, models {", ".join(p.models)}, '
      f'{jax.device_count()} device(s))')
  return run_experiment(p, workdir, resume=resume, progress=progress, log=log)
