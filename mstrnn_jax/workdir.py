"""The workdir: its files written atomically, ``experiment.json``, and resuming from it.

Workdir files::

  experiment.json        the experiment config (``config.to_json``), dataset summary, model
                         records, the run table of every model
  results.json / results.md / metrics.csv / events/ / curves_*.png   (mstrnn_jax.results, plots)
  checkpoints/<model>/<epoch>/   orbax (mstrnn_jax.checkpoint)
"""
from __future__ import annotations

import json
import os
import time
import jax
from ml_collections import config_dict

from mstrnn_jax import experiment_configs as ec

EXPERIMENT = 'experiment.json'


def write_atomic(path: str, text: str | bytes) -> None:
  """Writes ``path`` via a temporary file and ``os.replace`` (never a half-written file)."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb' if isinstance(text, bytes) else 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def is_writer() -> bool:
  """Only process 0 writes result files (every process takes part in checkpoints)."""
  return jax.process_index() == 0


def default_workdir(config: config_dict.ConfigDict) -> str:
  """runs/<dataset>-<model or all>[-sweep]-<UTC timestamp>."""
  sweep = '-sweep' if config.taus is not None and len(config.taus) > 1 else ''
  stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
  return os.path.join('runs', f'{config.dataset}-{config.model}{sweep}-{stamp}')


def experiment_record(p, runs_by_model: dict) -> dict:
  """The contents of experiment.json for plan ``p`` (a ``plan.Plan``)."""
  ds = p.dataset
  return {'experiment': ec.to_dict(p.config), 'dataset': p.config.dataset,
          'dataset_kwargs': ec.dataset_kwargs(p.config),
          'dataset_summary': {'videos': list(ds.videos.shape), 'heads': [list(h) for h in ds.heads],
                              'subjects': list(map(str, ds.subject_names)),
                              'crop_size': int(ds.crop_size)},
          'models': p.model_records,
          'runs': runs_by_model[p.models[0]], 'runs_by_model': runs_by_model}


def read_record(workdir: str) -> dict:
  """``workdir/experiment.json``; FileNotFoundError naming the folder if there is none."""
  path = os.path.join(workdir, EXPERIMENT)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {workdir!r} is not a workdir written by '
                            'experiments/run.py or experiments/sweep.py.')
  try:
    with open(path) as f:
      record = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: not valid JSON ({e}); restore it from a backup or start a new '
                     '--workdir.') from None
  if not isinstance(record, dict) or 'experiment' not in record:
    raise ValueError(f'{path}: not an experiment record (no "experiment" field); start a new '
                     '--workdir.')
  return record


def read_config(workdir: str) -> config_dict.ConfigDict:
  """The experiment config a workdir was run with."""
  return ec.from_dict(read_record(workdir)['experiment'])


def prepare_workdir(workdir: str, p, runs_by_model: dict, resume: bool) -> None:
  """Creates ``workdir`` and its experiment.json; on resume checks that it describes ``p``."""
  record = experiment_record(p, runs_by_model)
  path = os.path.join(workdir, EXPERIMENT)
  if not is_writer():
    return
  if os.path.exists(path):
    old = read_record(workdir)
    if not resume:
      raise FileExistsError(f'{workdir} already holds an experiment; pass --resume to continue '
                            'it or choose another --workdir.')
    if old['experiment'] != record['experiment']:
      raise ValueError(f'--resume: {path} describes a different experiment; use the same flags '
                       'or another --workdir.')
    return
  os.makedirs(workdir, exist_ok=True)
  write_atomic(path, json.dumps(record, indent=1))

