"""The experiment config every preset starts from: every field, its default and its meaning.

One ``ml_collections.ConfigDict``; the presets (``paper.py``, ``quick.py``, ``tiny.py``) only
change values, never the structure, so ``--config.<field>=<value>`` reaches every field of any
preset.  ``None`` fields are placeholders: "the model's / dataset's own default".

  dataset            canonical dataset name (data.pipeline.NAMES; aliases such as 3acwd accepted)
  preset             'paper' | 'quick' | 'tiny'
  model              'mstrnn' | 'lrcn' | 'mstnn', several comma-separated, or 'all'
  data.<dataset>.*   options of that dataset: the synthetic generators' arguments (the fields of
                     their argument records: seed, frame_size, crop_margin, lengths, subjects, noise,
                     ...); for the real datasets crop_margin (None: the builder's 10) and
                     frame_size (None: stored size; else frames are resized, crop in proportion)
  data.folder.*      options of a ``folder:PATH`` dataset (your own videos, data/folder.py):
                     frame_size (64), crop_margin (6), fps (None: all frames), frame_step (1),
                     max_frames (None: all), skip_bad_clips (False)
  stream             'auto' | 'never' | 'always': read a folder:PATH dataset's batches from its
                     prepared files while training ('auto': when its videos exceed the budget)
  data_memory_budget_mib   that budget in MiB (None: a quarter of the machine's memory,
                     data.stream.default_memory_budget; $MSTRNN_MEMORY_BUDGET in bytes)
  folds              group the subjects into this many LOSO folds (None: one fold per subject);
                     then ``subjects`` names fold numbers
  width_scale        channel-width multiplier of the paper-size models (configs.derive_config)
  model_overrides.*  any other ModelConfig field (widths, conv0_stride, taus, conv_impl,
                     time_layout, leaky_scan, remat, fc_input, bn_momentum, bn_epsilon); None: derived
  epochs             training epochs; experiment_configs.with_epochs / --epochs also move the
                     learning-rate boundaries in proportion
  batch_size, eval_batch_size, voting_steps (L of eq. 9), vote_rule ('vote' | 'mean_prob')
  eval_stats         BN statistics for evaluation, several modes computed every epoch, the
                     first one reported in the tables (train.EVAL_STATS: 'population' =
                     re-estimated on the fold's training set, 'running' = stored momentum
                     averages, 'subject' = the evaluated subject's own videos; docs/model.md)
  population_batches   the 'population' statistics pool at most this many training batches
                     (a fresh random subset every epoch); None: the whole training set
  validation_subjects  K >= 0 subjects per fold taken out of its training subjects (from
                     ``seed``), evaluated every epoch; results then also report the test
                     accuracy at the epoch with the best validation accuracy
  augment.tempo_range  training-time tempo augmentation: every training video is resampled
                     in time at speeds drawn log-uniformly in [1/r, r] (frames advanced per
                     step; data.pipeline.random_time_warp), 1.0 = off; evaluation, validation
                     and the BN statistics read the videos as they are
  augment.tempo_knots  1: one speed per video; K: K speeds along the video, log-speed
                     interpolated between them
  optim.*            train.OptimConfig: lr_values, lr_boundaries (in epochs), weight_decay,
                     clip, b1, b2, eps
  taus               ((tau1, tau2), ...) run for every fold; None: the model's default taus
  subjects           held-out subjects to run; None: all folds
  seed               seeds initialisation and batch order / crops of every run (not the data)
  seeds.init, seeds.batches   override ``seed`` for one of the two (None: from ``seed``)
  checkpoint_every   epochs between checkpoints (the last epoch is always saved)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing

from ml_collections import config_dict

from mstrnn_jax import configs, names, train
from mstrnn_jax.data import pipeline

# ModelConfig fields fixed by the dataset (not overridable).
_FROM_DATASET = ('model', 'input_size', 'heads', 'bn_steps')
_REAL_OPTIONS = {'crop_margin': int, 'frame_size': int}


def _placeholder_type(hint) -> type:
  origin = typing.get_origin(hint) or hint
  if isinstance(origin, type) and issubclass(origin, enum.Enum):
    return str
  if origin in (typing.Union, types.UnionType):
    return _placeholder_type(next(a for a in typing.get_args(hint) if a is not type(None)))
  return origin


FOLDER_KEY = 'folder'  # config.data.folder: the options of every folder:PATH dataset


def data_key(dataset: str) -> str:
  """The ``config.data`` entry of ``dataset`` ('folder' for ``folder:PATH``)."""
  return FOLDER_KEY if pipeline.is_folder(dataset) else dataset


def folder_options() -> config_dict.ConfigDict:
  """``data/folder.py``'s preparation options and crop margin, with its defaults."""
  from mstrnn_jax.data import folder  # pylint: disable=import-outside-toplevel

  opts = {'crop_margin': folder.CROP_MARGIN, **folder.PREPARE_DEFAULTS}
  types_ = {'fps': float, 'max_frames': int}
  return config_dict.ConfigDict(
    {k: config_dict.placeholder(types_[k]) if v is None else v for k, v in opts.items()}
  )


def canonical_dataset(dataset: str) -> str:
  """``pipeline.canonical_name``; ``folder:PATH`` with PATH made absolute (runs resume from
  any directory)."""
  dataset = pipeline.canonical_name(dataset)
  if pipeline.is_folder(dataset):
    path = dataset[len(pipeline.FOLDER_PREFIX) :]
    return pipeline.FOLDER_PREFIX + os.path.abspath(os.path.expanduser(path))
  return dataset


def data_options(dataset: str) -> config_dict.ConfigDict:
  """The options of ``dataset``: a synthetic generator's argument record, else the real ones'."""
  if dataset == FOLDER_KEY:
    return folder_options()
  if dataset in pipeline.SYNTHETIC:
    return config_dict.ConfigDict(dataclasses.asdict(pipeline.SYNTHETIC_ARGS[dataset]()))
  return config_dict.ConfigDict({k: config_dict.placeholder(t) for k, t in _REAL_OPTIONS.items()})


def model_overrides() -> config_dict.ConfigDict:
  """One ``None`` placeholder per overridable ``configs.ModelConfig`` field."""
  hints = typing.get_type_hints(configs.ModelConfig)
  return config_dict.ConfigDict(
    {
      f.name: config_dict.placeholder(_placeholder_type(hints[f.name]))
      for f in dataclasses.fields(configs.ModelConfig)
      if f.name not in _FROM_DATASET
    }
  )


def optim(optim_config: train.OptimConfig) -> config_dict.ConfigDict:
  return config_dict.ConfigDict(dataclasses.asdict(optim_config))


def get_config(dataset: str, preset: str) -> config_dict.ConfigDict:
  """The paper-protocol values for ``dataset``'s analogue; presets change them."""
  dataset = canonical_dataset(dataset)
  c = config_dict.ConfigDict()
  c.dataset = dataset
  c.preset = preset
  c.model = names.MODELS[0]
  c.data = config_dict.ConfigDict({d: data_options(d) for d in pipeline.NAMES + (FOLDER_KEY,)})
  c.width_scale = 1.0
  c.model_overrides = model_overrides()
  c.epochs = 600
  c.batch_size = 27
  c.eval_batch_size = 32
  c.voting_steps = 15
  c.vote_rule = names.VoteRule.VOTE.value
  c.eval_stats = train.DEFAULT_EVAL_STATS
  c.population_batches = config_dict.placeholder(int)
  c.validation_subjects = 0
  c.augment = config_dict.ConfigDict(dataclasses.asdict(pipeline.TempoWarp()))
  c.optim = optim(train.OptimConfig())
  c.taus = config_dict.placeholder(tuple)
  c.subjects = config_dict.placeholder(tuple)
  c.folds = config_dict.placeholder(int)
  c.stream = 'auto'
  c.data_memory_budget_mib = config_dict.placeholder(float)
  c.seed = 0
  c.seeds = config_dict.ConfigDict(
    {'init': config_dict.placeholder(int), 'batches': config_dict.placeholder(int)}
  )
  c.checkpoint_every = 10
  return c
