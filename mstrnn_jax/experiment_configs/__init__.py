"""Experiment configs: one ``get_config(dataset)`` per preset, like flax ``examples/*/configs``.

    from mstrnn_jax import experiment_configs
    config = experiment_configs.get_config('quick', 'synth3a')   # an ml_collections.ConfigDict
    config = experiment_configs.with_epochs(config, 80)            # LR boundaries move too

``base.py`` documents every field.  ``experiments/run.py`` and ``sweep.py`` read the config
with ``ml_collections.config_flags`` (``--config.<field>=<value>``; ``mstrnn_jax.cli``).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Mapping

from ml_collections import config_dict

from mstrnn_jax import names, train
from mstrnn_jax.data import pipeline
from mstrnn_jax.errors import ArgError
from mstrnn_jax.experiment_configs.base import data_key

PRESETS = ('paper', 'quick', 'tiny')


def default_preset(dataset: str) -> str:
  """'quick' for the synthetic datasets and your own videos, 'paper' for the real ones."""
  name = pipeline.canonical_name(dataset)
  return 'quick' if name in pipeline.SYNTHETIC or pipeline.is_folder(name) else 'paper'


def get_config(preset: str | None, dataset: str) -> config_dict.ConfigDict:
  """The ``preset`` config for ``dataset`` (``preset`` None: :func:`default_preset`)."""
  preset = default_preset(dataset) if preset is None else preset
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; use one of {", ".join(PRESETS)}.')
  return importlib.import_module(f'{__name__}.{preset}').get_config(dataset)


def with_epochs(config: config_dict.ConfigDict, epochs: int) -> config_dict.ConfigDict:
  """``config`` trained for ``epochs``, its learning-rate boundaries moved in proportion."""
  config = config.copy_and_resolve_references()
  scale = epochs / config.epochs
  config.optim.lr_boundaries = tuple(max(1, round(b * scale)) for b in config.optim.lr_boundaries)
  config.epochs = epochs
  return config


def tuples(value: Any) -> Any:
  """JSON lists back to (nested) tuples."""
  return tuple(tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def override(config: config_dict.ConfigDict, values: Mapping[str, Any]) -> config_dict.ConfigDict:
  """A copy of ``config`` with ``{'optim.clip': 5.0, ...}`` set (type-checked by ConfigDict)."""
  config = config.copy_and_resolve_references()
  for path, value in values.items():
    *parents, leaf = path.split('.')
    node = config
    for p in parents:
      node = node[p]
    if leaf not in node:
      raise ValueError(f'config has no field {path!r} (see mstrnn_jax/experiment_configs/base.py).')
    node[leaf] = tuples(value)
  return config


# Fields added after the behaviour they choose was fixed, with the value that behaviour had: a
# stored config without one (an older workdir) is read with that value, not today's default, so
# resuming or analysing it uses the data and model it ran with.
ADDED_FIELDS = {'data.synthcl2.count_timing': 'equal_total'}


def flat(d: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """A nested config dict (:func:`to_dict`) as ``{'optim.clip': 12.0, ...}``."""
  out = {}
  for k, v in d.items():
    if isinstance(v, Mapping):
      out.update(flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def from_dict(d: Mapping[str, Any]) -> config_dict.ConfigDict:
  """Rebuilds a config from its ``to_json`` form (``workdir/experiment.json``); fields it lacks
  take their ``ADDED_FIELDS`` value, else the preset's default."""
  return override(get_config(d['preset'], d['dataset']), {**ADDED_FIELDS, **flat(d)})


def to_dict(config: config_dict.ConfigDict) -> dict:
  """The JSON form of ``config`` (what experiment.json and results.json hold)."""
  return json.loads(config.to_json())


def changed_settings(config: config_dict.ConfigDict) -> dict[str, Any]:
  """The fields of ``config`` that differ from its preset's defaults, flattened
  (``{'augment.tempo_range': 1.4, 'epochs': 80, ...}``): what a run's results.md names."""
  default = flat(to_dict(get_config(config.preset, config.dataset)))
  changed = flat(to_dict(config)).items()
  return {k: tuples(v) for k, v in changed if tuples(default.get(k)) != tuples(v)}


def model_names(config: config_dict.ConfigDict) -> tuple[str, ...]:
  """``config.model`` ('mstrnn', 'mstrnn,lrcn' or 'all') as a tuple of model families."""
  if config.model == 'all':
    return names.MODELS
  models = tuple(config.model.split(','))
  for m in models:
    if m not in names.MODELS:
      raise ValueError(
        f'config.model: unknown model {m!r}; use one or more of '
        f'{", ".join(names.MODELS)} (comma-separated) or all.'
      )
  return models


def dataset_kwargs(config: config_dict.ConfigDict) -> dict:
  """Arguments of ``pipeline.load_dataset`` (real datasets: crop_margin if set; folder:PATH:
  the set ``config.data.folder`` options). A synthetic generator's argument or a folder option
  out of range is a ValueError naming its flag (``--config.data.<dataset or folder>.<field>``)."""
  key = data_key(config.dataset)
  options = config.data[key].to_dict()
  try:
    if config.dataset in pipeline.SYNTHETIC:
      pipeline.SYNTHETIC_ARGS[config.dataset](**options)
      return options
    if pipeline.is_folder(config.dataset):
      from mstrnn_jax.data import folder

      options = {k: v for k, v in options.items() if v is not None}
      opts = folder.options(**{k: v for k, v in options.items() if k != 'crop_margin'})
      folder.check_crop(options.get('crop_margin', folder.CROP_MARGIN), opts['frame_size'])
      return options
  except ArgError as e:
    raise ValueError(f'--config.data.{key}.{e.field}: {e}') from None
  return {k: v for k, v in options.items() if k != 'frame_size' and v is not None}


def dataset_label(dataset: str) -> str:
  """A file-name-safe name of ``dataset`` ('folder-<PATH's name>' for ``folder:PATH``)."""
  if pipeline.is_folder(dataset):
    return f'folder-{os.path.basename(dataset[len(pipeline.FOLDER_PREFIX) :].rstrip("/"))}'
  return dataset


def optim_config(config: config_dict.ConfigDict) -> train.OptimConfig:
  return train.OptimConfig(**{k: tuples(v) for k, v in config.optim.items()})


def tempo_warp(config: config_dict.ConfigDict) -> pipeline.TempoWarp:
  """``config.augment`` as the train step's :class:`pipeline.TempoWarp` (the same fields)."""
  return pipeline.TempoWarp(**dict(config.augment))


def model_overrides(config: config_dict.ConfigDict) -> dict:
  """The set (non-None) ``model_overrides`` fields."""
  return {k: tuples(v) for k, v in config.model_overrides.items() if v is not None}


def run_seeds(config: config_dict.ConfigDict) -> tuple[int, int | None]:
  """(initialisation seed, batch-order seed or None when it follows the initialisation key)."""
  init = config.seed if config.seeds.init is None else config.seeds.init
  return init, config.seeds.batches
