"""What will run: the experiment config checked, the dataset loaded, the runs and model records.

Everything here runs before any compilation, so a bad setting fails in seconds with one line
naming it.  :func:`describe` is the dry run: parameter counts and the cost of one train step.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from mstrnn_jax import configs, evaluate, model_records, names, train
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline
from mstrnn_jax.data.resize import resize_frames
from mstrnn_jax.errors import ArgError


@dataclasses.dataclass
class Plan:
  """The loaded dataset, the folds and one model record per model family of ``config``."""

  config: config_dict.ConfigDict
  models: tuple[str, ...]
  dataset: Any
  folds: list  # pipeline.Fold; train_idx without the validation subjects' videos
  tau_pairs: tuple[tuple[float, ...], ...] | None
  model_records: dict
  validation: dict = dataclasses.field(default_factory=dict)  # test subject -> (subjects, rows)

  @property
  def steps_per_epoch(self) -> int:
    return min(len(f.train_idx) for f in self.folds) // self.config.batch_size


def validate(config: config_dict.ConfigDict) -> tuple[str, ...]:
  """Checks ``config`` without loading data; returns its model families.

  Raises ValueError naming the bad field.
  """
  pipeline.canonical_name(config.dataset)
  models = ec.model_names(config)
  validate_taus(config.taus, models)
  if config.model_overrides.taus:
    validate_taus((config.model_overrides.taus,), models, '--config.model_overrides.taus')
  for name in ('epochs', 'batch_size', 'voting_steps', 'eval_batch_size', 'checkpoint_every'):
    if config[name] < 1:
      raise ValueError(f'config.{name} must be >= 1, got {config[name]}.')
  names.choose(names.VoteRule, config.vote_rule, 'config.vote_rule')
  try:
    train.check_eval_stats(tuple(config.eval_stats))
  except ValueError as e:
    raise ValueError(f'config.eval_stats: {e}') from None
  if config.population_batches is not None and config.population_batches < 1:
    raise ValueError(
      f'config.population_batches must be >= 1 (or None: all), got {config.population_batches}.'
    )
  try:
    ec.tempo_warp(config)
  except ArgError as e:
    raise ValueError(f'--config.augment.{e.field}: {e}') from None
  if config.validation_subjects < 0:
    raise ValueError(f'config.validation_subjects must be >= 0, got {config.validation_subjects}.')
  try:
    ec.optim_config(config)
  except ArgError as e:
    raise ValueError(f'--config.optim.{e.field}: {e}') from None
  except TypeError as e:  # a field OptimConfig does not have (a hand-edited experiment.json)
    raise ValueError(f'config.optim (--config.optim.*): {e}') from None
  return models


def has_taus(model: str) -> bool:
  """Whether model family ``model`` has time constants (LRCN has none)."""
  return bool(configs.PAPER_WIDTHS[model]['taus'])


def validate_taus(taus, models: tuple[str, ...], flag: str = '--tau1/--tau2 (config.taus)') -> None:
  """Time constants: finite and >= 1 (eqs. 5 and 7 use 1/tau, which must lie in (0, 1]); none for
  families without them.  With several families, those without taus (LRCN) run without them."""
  if taus is None:
    return
  if not any(has_taus(m) for m in models):
    raise ValueError(f'{flag}: {", ".join(models)} has no time constants; drop the tau flags.')
  for pair in taus:
    if not all(math.isfinite(t) and t >= 1 for t in pair):
      raise ValueError(
        f'{flag}: time constants must be finite and >= 1 '
        f'(eqs. 5 and 7 need 0 < 1/tau <= 1), got tau pair {tuple(pair)}.'
      )


def load_data(config: config_dict.ConfigDict, data_dir: str | None = None):
  """The dataset of ``config`` (real datasets resized when ``data.<name>.frame_size`` is set;
  folder:PATH streamed from its files when larger than the budget, ``stream_loop``)."""
  from mstrnn_jax import stream_loop  # pylint: disable=import-outside-toplevel

  if pipeline.is_folder(config.dataset) or stream_loop.stream_mode(config) == 'always':
    return stream_loop.load_folder(config, data_dir)
  ds = pipeline.load_dataset(config.dataset, data_dir=data_dir, **ec.dataset_kwargs(config))
  frame_size = config.data[ec.data_key(config.dataset)].get('frame_size')
  if config.dataset in pipeline.REAL and frame_size is not None:
    ds = resize_frames(ds, frame_size)
  return ds


def make_folds(config: config_dict.ConfigDict, ds) -> list:
  """``pipeline.loso_folds``: one fold per subject, or ``config.folds`` groups of subjects."""
  try:
    return pipeline.loso_folds(ds, folds=config.folds)
  except ValueError as e:
    raise ValueError(f'--config.folds: {e}') from None


def fold_name(ds, fold) -> str:
  """The held-out subjects' names of ``fold``, joined by '+'."""
  held = fold.test_subjects or (fold.test_subject,)
  return '+'.join(str(ds.subject_names[int(s)]) for s in held)


def plan(config: config_dict.ConfigDict, data_dir: str | None = None) -> Plan:
  """Validates, loads the dataset, builds the fold list and model records."""
  models = validate(config)
  ds = load_data(config, data_dir)
  folds = make_folds(config, ds)
  if config.subjects is not None:
    known = {int(f.test_subject) for f in folds}
    bad = sorted(set(config.subjects) - known)
    if bad:
      what = 'folds' if config.folds is not None else 'subjects'
      raise ValueError(f'--subjects {bad} not in {config.dataset} ({what} 0..{len(folds) - 1}).')
    folds = [f for f in folds if int(f.test_subject) in set(config.subjects)]
  folds, validation = split_validation(ds, folds, config.validation_subjects, config.seed)
  min_train = min(len(f.train_idx) for f in folds)
  if config.batch_size > min_train:
    raise ValueError(
      f'batch_size {config.batch_size} is larger than the smallest training set '
      f'({min_train} videos) of {config.dataset}; use --batch_size<={min_train}.'
    )
  t_max = ds.videos.shape[1]
  if config.voting_steps > t_max:
    raise ValueError(f'voting_steps {config.voting_steps} exceeds the video length {t_max}.')
  records = {
    m: model_records.model_record(
      m,
      config.dataset,
      ds.crop_size,
      ds.heads,
      t_max,
      config.width_scale,
      ec.model_overrides(config),
    )
    for m in models
  }
  taus = tau_pairs(config)
  for m, rec in records.items():
    n_taus = len(model_records.model_config_from_record(rec).taus)
    if taus is not None and n_taus and any(len(p) != n_taus for p in taus):
      raise ValueError(f'{m} has {n_taus} time constants; got tau tuples {taus}.')
  return Plan(
    config=config,
    models=models,
    dataset=ds,
    folds=folds,
    tau_pairs=taus,
    model_records=records,
    validation=validation,
  )


def split_validation(ds, folds: list, k: int, seed: int) -> tuple[list, dict]:
  """Takes ``k`` validation subjects out of every fold's training set.

  Returns (folds with the reduced ``train_idx``, {test subject: (validation subjects, their
  dataset rows)}); ``k == 0`` returns the folds unchanged and an empty dict.
  """
  if k == 0:
    return folds, {}
  try:
    picks = {
      int(f.test_subject): evaluate.validation_subjects(
        np.unique(ds.subjects[f.train_idx]), k, seed, int(f.test_subject)
      )
      for f in folds
    }
  except ValueError as e:
    raise ValueError(f'config.validation_subjects: {e}') from None
  out, validation = [], {}
  for f in folds:
    vals = picks[int(f.test_subject)]
    held = np.isin(ds.subjects[f.train_idx], vals)
    out.append(f._replace(train_idx=f.train_idx[~held]))
    validation[int(f.test_subject)] = (vals, f.train_idx[held])
  return out, validation


def tau_pairs(config: config_dict.ConfigDict) -> tuple[tuple[float, ...], ...] | None:
  """``config.taus`` as float tuples (None: each model's default taus)."""
  return None if config.taus is None else tuple(tuple(float(t) for t in p) for p in config.taus)


def program_options(p: Plan) -> dict:
  """The keyword arguments that ``train.make_programs`` and ``train.make_step_programs`` both
  take from the experiment: batch_size, steps_per_epoch, voting_steps, vote_rule, tempo_warp."""
  c = p.config
  return dict(
    batch_size=c.batch_size,
    steps_per_epoch=p.steps_per_epoch,
    voting_steps=c.voting_steps,
    vote_rule=c.vote_rule,
    tempo_warp=ec.tempo_warp(c),
  )


def run_table(p: Plan, model: str) -> list[dict]:
  """The runs of ``model``: tau pairs (outer) x folds (inner)."""
  cfg = model_records.model_config_from_record(p.model_records[model])
  if not cfg.taus:
    pairs = [()]
  else:
    pairs = [tuple(float(t) for t in cfg.taus)] if p.tau_pairs is None else list(p.tau_pairs)
  subject_names = p.dataset.subject_names
  runs = [
    {
      'run': i,
      'test_subject': int(f.test_subject),
      'subject_name': fold_name(p.dataset, f),
      'taus': [float(t) for t in pair],
    }
    for i, (pair, f) in enumerate(itertools.product(pairs, p.folds))
  ]
  for r in runs:
    if p.validation:
      r['validation_subjects'] = [str(subject_names[s]) for s in p.validation[r['test_subject']][0]]
  return runs


def build_tables(p: Plan, runs: list[dict]) -> train.RunTables:
  """Numpy run tables (unpadded) for ``runs``."""
  by_subject = {int(f.test_subject): f for f in p.folds}
  folds = [by_subject[r['test_subject']] for r in runs]
  n_tr = max(len(f.train_idx) for f in folds)
  n_te = max(len(f.test_idx) for f in folds)
  pad = lambda a, n: np.pad(np.asarray(a, np.int32), (0, n - len(a)))  # noqa: E731
  val_idx = val_mask = None
  if p.validation:
    vals = [p.validation[r['test_subject']][1] for r in runs]
    n_va = max(len(v) for v in vals)
    val_idx = np.stack([pad(v, n_va) for v in vals])
    val_mask = np.stack([np.arange(n_va) < len(v) for v in vals])
  return train.RunTables(
    train_idx=np.stack([pad(f.train_idx, n_tr) for f in folds]),
    n_train=np.asarray([len(f.train_idx) for f in folds], np.int32),
    test_idx=np.stack([pad(f.test_idx, n_te) for f in folds]),
    test_mask=np.stack([np.arange(n_te) < len(f.test_idx) for f in folds]),
    taus=np.asarray([r['taus'] for r in runs], np.float32).reshape(len(runs), -1),
    val_idx=val_idx,
    val_mask=val_mask,
  )


def describe(p: Plan) -> str:
  """Dry-run summary: the resolved config, dataset, runs, per model the parameter count and the
  cost of one train step of one run (XLA cost analysis of the lowered step; nothing is compiled
  or trained)."""
  ds, c = p.dataset, p.config
  steps = p.steps_per_epoch
  optim = ec.optim_config(c)
  lines = [
    f'Config:\n{c.to_json(indent=1)}',
    f'Dataset {c.dataset}: videos {tuple(ds.videos.shape)} uint8 '
    f'({ds.videos.nbytes / 2**20:.1f} MiB), crop {ds.crop_size}, heads {ds.heads}, '
    f'{len(ds.subject_names)} subjects; folds run: {[int(f.test_subject) for f in p.folds]}',
    f'Experiment ({c.preset}): {c.epochs} epochs x {steps} steps of batch '
    f'{c.batch_size}, voting steps {c.voting_steps} ({c.vote_rule}), LR '
    f'{optim.lr_values} at epoch boundaries {optim.lr_boundaries}, weight decay '
    f'{optim.weight_decay}, clip {optim.clip}, width scale {c.width_scale}, '
    f'devices {jax.device_count()}',
  ]
  for model in p.models:
    cfg = model_records.model_config_from_record(p.model_records[model])
    fns = train.model_fns(cfg)
    runs = run_table(p, model)
    shapes = jax.eval_shape(fns.init, jax.random.key(0))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))
    flops = _step_flops(p, fns, optim)
    lines.append(
      f'{model.upper()}: {n_params:,} parameters; {len(runs)} runs '
      f'(taus {sorted({tuple(r["taus"]) for r in runs})}); one train step of one run '
      f'~{flops / 1e9:.2f} GFLOP -> {flops * steps * c.epochs * len(runs) / 1e12:.1f}'
      f' TFLOP for the whole experiment; config {cfg}'
    )
  return '\n'.join(lines)


def _step_flops(p: Plan, fns: train.ModelFns, optim: train.OptimConfig) -> float:
  """XLA's FLOP estimate of one lowered train step of one run."""
  ds, c = p.dataset, p.config
  tx = train.make_optimizer(optim, p.steps_per_epoch)
  state = jax.eval_shape(
    lambda k: train.create_train_state(fns, tx, k), jax.ShapeDtypeStruct((2,), jnp.uint32)
  )
  t_max, (h, w) = ds.videos.shape[1], ds.videos.shape[2:4]
  step = jax.jit(
    lambda st, v, l, t, k: train.train_step(fns, tx, c.voting_steps, c.vote_rule, st, v, l, t, k)
  )
  lowered = step.lower(
    state,
    jax.ShapeDtypeStruct((c.batch_size, t_max, h, w, 3), jnp.uint8),
    jax.ShapeDtypeStruct((c.batch_size, len(ds.heads)), jnp.int32),
    jax.ShapeDtypeStruct((fns.n_taus,), jnp.float32),
    jax.random.key(0),
  )
  cost = lowered.cost_analysis() or {}
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', float('nan')))
