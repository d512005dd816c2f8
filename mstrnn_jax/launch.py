"""From an experiment config to a finished workdir: plan, then describe (dry run) or train.

config = experiment_configs.get_config('tiny', 'synth3a')
launch.launch(config, workdir='/tmp/run')          # experiments/run.py does this
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import jax
import numpy as np
from ml_collections import config_dict

from mstrnn_jax import epoch_loop, results
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax import workdir as workdirs
from mstrnn_jax.plan import Plan, describe, plan, run_table, tau_pairs
from mstrnn_jax.workdir import default_workdir, is_writer, prepare_workdir


def run_experiment(
  p: Plan,
  workdir: str,
  *,
  resume: bool = False,
  mesh=None,
  progress: bool = True,
  log: Callable[[str], None] = print,
) -> dict:
  """Trains every model of ``p`` over all its runs, writes every result file, returns the
  results dict (as in results.json)."""
  from mstrnn_jax import plots  # pylint: disable=import-outside-toplevel

  record = prepare_workdir(workdir, p, {m: run_table(p, m) for m in p.models}, resume)
  # The workdir's whole experiment (every model family it holds) for the result files.
  whole = ec.from_dict(record['experiment'])
  p_all = dataclasses.replace(p, config=whole, tau_pairs=tau_pairs(whole))
  done = kept_results(workdir, [m for m in record['models'] if m not in p.models])
  for model in p.models:

    def on_epoch(res, model=model):
      if is_writer():
        results.write_results(workdir, p_all, {**done, model: res}, final=False)

    done[model] = epoch_loop.train_model(
      p, model, workdir, resume=resume, mesh=mesh, progress=progress, on_epoch=on_epoch
    )
  if not is_writer():
    return {}
  done = {m: done[m] for m in record['models'] if m in done}
  out = results.write_results(workdir, p_all, done, final=True)
  plots.write_figures(workdir, out, p.dataset.heads, p_all.tau_pairs)
  with open(os.path.join(workdir, 'results.md')) as f:
    log(f.read())
  return out


def kept_results(workdir: str, models: list[str]) -> dict:
  """The results of ``models`` already in ``workdir/results.json`` (families trained by an
  earlier run of this workdir and not trained now), as :func:`results.result` dicts."""
  path = os.path.join(workdir, 'results.json')
  if not models or not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      stored = json.load(f)['models']
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f'{path}: not a results file ({e}); move it aside to keep it, then resume again.'
    ) from None
  return {
    m: {
      'runs': e['runs'],
      'epochs_done': e['epochs_done'],
      'seconds': e['seconds'],
      'history': {k: np.asarray(v) for k, v in e['history'].items()},
    }
    for m, e in stored.items()
    if m in models
  }


def launch(
  config: config_dict.ConfigDict,
  *,
  workdir: str | None = None,
  resume: bool = False,
  dry_run: bool = False,
  data_dir: str | None = None,
  progress: bool = True,
  log: Callable[[str], None] = print,
) -> dict | None:
  """Plans (all checks before any compilation), then describes (dry run) or runs."""
  if resume and workdir is None:
    raise ValueError('--resume needs the --workdir of the run to continue.')
  if not dry_run:
    workdir = workdir or default_workdir(config)
    if is_writer():  # process 0 alone, before it writes (others would see its files)
      workdirs.check_workdir(workdir, resume)
  if resume:
    config = workdirs.resume_config(
      workdirs.read_config(workdir), config, os.path.join(workdir, workdirs.EXPERIMENT)
    )
  p = plan(config, data_dir=data_dir)
  if dry_run:
    log(describe(p))
    return None
  log(
    f'workdir: {workdir}  ({len(p.folds)} folds, models {", ".join(p.models)}, '
    f'{jax.device_count()} device(s))'
  )
  return run_experiment(p, workdir, resume=resume, progress=progress, log=log)
