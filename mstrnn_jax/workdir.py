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
from types import SimpleNamespace

import jax
from ml_collections import config_dict

from mstrnn_jax import experiment_configs as ec
from mstrnn_jax import names
from mstrnn_jax.plan import has_taus

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
  return os.path.join('runs', f'{ec.dataset_label(config.dataset)}-{config.model}{sweep}-{stamp}')


def experiment_record(p, runs_by_model: dict) -> dict:
  """The contents of experiment.json for plan ``p`` (a ``plan.Plan``)."""
  ds = p.dataset
  return {
    'experiment': ec.to_dict(p.config),
    'dataset': p.config.dataset,
    'dataset_kwargs': ec.dataset_kwargs(p.config),
    'dataset_summary': {
      'videos': list(ds.videos.shape),
      'heads': [list(h) for h in ds.heads],
      'subjects': list(map(str, ds.subject_names)),
      'crop_size': int(ds.crop_size),
      'class_names': {h: list(map(str, n)) for h, n in ds.class_names.items()},
    },
    'models': p.model_records,
    'runs': runs_by_model[p.models[0]],
    'runs_by_model': runs_by_model,
  }


def read_record(workdir: str) -> dict:
  """``workdir/experiment.json``; FileNotFoundError naming the folder if there is none."""
  path = os.path.join(workdir, EXPERIMENT)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f'{path} not found: {workdir!r} is not a workdir written by '
      'experiments/run.py or experiments/sweep.py.'
    )
  try:
    with open(path) as f:
      record = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(
      f'{path}: not valid JSON ({e}); restore it from a backup or start a new --workdir.'
    ) from None
  if not isinstance(record, dict) or 'experiment' not in record:
    raise ValueError(
      f'{path}: not an experiment record (no "experiment" field); start a new --workdir.'
    )
  return record


def record_model(record: dict, workdir: str, model: str | None = None) -> str:
  """``model`` if ``record`` (a :func:`read_record` of ``workdir``) holds it, else a one-line
  KeyError naming the models it holds; None picks its first model."""
  names = list(record['models'])
  model = names[0] if model is None else model
  if model not in record['models']:
    raise KeyError(f'{workdir}: no model {model!r}; it holds {names}.')
  return model


def read_config(workdir: str) -> config_dict.ConfigDict:
  """The experiment config a workdir was run with."""
  return ec.from_dict(read_record(workdir)['experiment'])


def check_writable(folder: str, flag: str) -> None:
  """ValueError (one line, naming ``flag``) unless ``folder`` or its nearest existing parent
  accepts new files."""
  probe = os.path.abspath(folder)
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
    raise ValueError(f'{flag}={folder}: {probe} is not a writable folder; choose another {flag}.')


def check_workdir(workdir: str, resume: bool) -> None:
  """Before any work: the workdir exists iff resuming, holds a run iff resuming, is writable.

  A plain run takes a new or empty folder only (never one holding other files or a run).
  """
  path = os.path.join(workdir, EXPERIMENT)
  if resume:
    if not os.path.isdir(workdir):
      raise FileNotFoundError(
        f'--resume: --workdir={workdir} does not exist; check the path '
        '(or drop --resume to start a new run there).'
      )
    if not os.path.exists(path):
      raise FileNotFoundError(
        f'--resume: {workdir} holds no {EXPERIMENT}, so it is not a run '
        'to continue; check --workdir.'
      )
  elif os.path.exists(path):
    raise FileExistsError(
      f'{workdir} already holds an experiment; pass --resume to continue it '
      '(or to add another --model to it) or choose another --workdir.'
    )
  elif os.path.isdir(workdir) and os.listdir(workdir):
    raise FileExistsError(
      f'--workdir={workdir} is a non-empty folder that is not a run (no '
      f'{EXPERIMENT}); choose a new or empty --workdir.'
    )
  elif os.path.exists(workdir) and not os.path.isdir(workdir):
    raise FileExistsError(f'--workdir={workdir} is a file; choose a new or empty --workdir.')
  check_writable(workdir, '--workdir')


def resume_config(
  old: config_dict.ConfigDict, new: config_dict.ConfigDict, where: str = EXPERIMENT
) -> config_dict.ConfigDict:
  """The config a resumed run trains with: ``old`` (the workdir's) with ``new``'s model(s) and
  epochs.

  - ``model``: any family; a family the workdir does not hold yet is added to it (results of
    every family coexist).
  - ``epochs``: may grow (training further); the stored learning-rate boundaries are kept, so
    the extra epochs run at the last rate.  ``new``'s boundaries may be the stored ones or the
    ones ``--epochs`` moved in proportion.
  - ``taus``: not compared when ``new`` trains only families without time constants (LRCN) and
    sets none; the workdir keeps its taus for its other families.
  - ``data.*`` of datasets other than the run's: not compared.

  Raises ValueError naming every other field that differs, old and new.
  """
  o, n = ec.flat(ec.to_dict(old)), ec.flat(ec.to_dict(new))
  ignore = {'model', 'epochs'}
  # The options of datasets the run does not use change nothing (a differing dataset is a
  # difference of its own).
  used = f'data.{ec.data_key(old.dataset)}.'
  ignore |= {k for k in set(o) | set(n) if k.startswith('data.') and not k.startswith(used)}
  if new.epochs < old.epochs:
    raise ValueError(
      f'--resume: {where} was trained for epochs={old.epochs}; --epochs='
      f'{new.epochs} cannot shorten it (give --epochs>={old.epochs}).'
    )
  if (
    new.epochs > old.epochs
    and ec.tuples(n['optim.lr_boundaries']) == ec.with_epochs(old, new.epochs).optim.lr_boundaries
  ):
    ignore.add('optim.lr_boundaries')
  tauless = not any(has_taus(m) for m in ec.model_names(new))
  if tauless and new.taus is None:
    ignore.add('taus')
  diff = [
    f'{k}: {o.get(k)} -> {n.get(k)}'
    for k in sorted(set(o) | set(n))
    if k not in ignore and ec.tuples(o.get(k)) != ec.tuples(n.get(k))
  ]
  if diff:
    raise ValueError(
      f'--resume: {where} was run with other settings ({"; ".join(diff)}); give '
      'the same flags (or --resume alone) or use another --workdir.'
    )
  return ec.override(
    old, {'model': new.model, 'epochs': new.epochs, 'taus': new.taus if tauless else old.taus}
  )


def merge_models(old: str, new: str) -> str:
  """``config.model`` covering the families of both: ``old`` if it does, else every family in
  ``names.MODELS`` order."""
  families = lambda model: set(ec.model_names(SimpleNamespace(model=model)))  # noqa: E731
  if families(new) <= families(old):
    return old
  return ','.join(m for m in names.MODELS if m in families(old) | families(new))


def prepare_workdir(workdir: str, p, runs_by_model: dict, resume: bool) -> dict:
  """Creates ``workdir`` and its experiment.json, or (resuming) adds ``p``'s model families
  and epochs to it; returns the record now in experiment.json.

  Call :func:`check_workdir` and :func:`resume_config` first (``launch.launch`` does).
  """
  record = experiment_record(p, runs_by_model)
  path = os.path.join(workdir, EXPERIMENT)
  if resume and os.path.exists(path):
    old = read_record(workdir)
    record = _merged_record(old, record)
    if record == old or not is_writer():
      return record
  elif not is_writer():
    return record
  else:
    check_workdir(workdir, resume=False)
    os.makedirs(workdir, exist_ok=True)
  write_atomic(path, json.dumps(record, indent=1))
  return record


def _merged_record(old: dict, new: dict) -> dict:
  """``old`` with the model records, runs and epochs of ``new`` added (nothing removed)."""
  merged = json.loads(json.dumps(old))
  exp = merged['experiment']
  exp['model'] = merge_models(exp['model'], new['experiment']['model'])
  exp['epochs'] = max(exp['epochs'], new['experiment']['epochs'])
  for key in ('models', 'runs_by_model'):
    merged[key].update({m: v for m, v in new[key].items() if m not in old[key]})
  return merged
