"""Experiment presets: one :class:`Experiment` per (dataset, preset).

* ``paper``: the paper's protocol (Sec. II.E-F): full-width models (Table I), voting period 15,
  mini-batches 27 / 90 / 84, the piecewise learning rates, 600 epochs.  On the synthetic
  analogues it uses the hyper-parameters of the paper dataset they imitate (synth3a ->
  3ACWD, synthcl1 -> CL1AD, synthcl2 -> CL2AD) with a model derived for their frame size.
* ``quick``: narrow models and few epochs so that all LOSO folds of a synthetic dataset train in
  minutes on a 2-core CPU (``experiments/run.py`` with no flags uses ``synth3a`` / ``quick``).
* ``tiny``: a few-second configuration for tests and smoke runs (tiny synthetic dataset).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from mstrnn_jax.train import OptimConfig

MODELS = ('mstrnn', 'lrcn', 'mstnn')   # the column order of Tables III-V
PRESETS = ('paper', 'quick', 'tiny')
PAPER_DATASETS = ('weizmann_3acwd', 'cl1ad', 'cl2ad')
SYNTHETIC_DATASETS = ('synth3a', 'synthcl1', 'synthcl2')
DATASETS = SYNTHETIC_DATASETS + PAPER_DATASETS
# The paper dataset whose protocol a synthetic analogue follows.
ANALOGUE = {'synth3a': 'weizmann_3acwd', 'synthcl1': 'cl1ad', 'synthcl2': 'cl2ad',
            'weizmann_3acwd': 'weizmann_3acwd', 'cl1ad': 'cl1ad', 'cl2ad': 'cl2ad'}

_PAPER_OPTIM = {
    'weizmann_3acwd': OptimConfig(lr_values=(0.01, 0.005, 0.001), lr_boundaries=(200, 300)),
    'cl1ad': OptimConfig(lr_values=(0.005, 0.001), lr_boundaries=(400,)),
    'cl2ad': OptimConfig(lr_values=(0.005, 0.001), lr_boundaries=(400,)),
}
_PAPER_BATCH = {'weizmann_3acwd': 27, 'cl1ad': 90, 'cl2ad': 84}
# Tiny preset: 3 subjects, short videos (the frame size stays 36: a 2-context-layer MSTRNN needs
# a crop of at least 30 pixels).
_TINY_DATA = {'synth3a': (('frames_per_primitive', 3), ('num_subjects', 3)),
              'synthcl1': (('frames_per_video', 8), ('num_subjects', 3),
                           ('videos_per_category', 1)),
              'synthcl2': (('frames_per_video', 8), ('num_subjects', 3),
                           ('videos_per_triplet', 1))}


@dataclasses.dataclass(frozen=True)
class Experiment:
  """Everything that defines a LOSO experiment except the model family.

  dataset / dataset_kwargs: arguments of ``pipeline.load_dataset`` (kwargs only for synthetic).
  width_scale:   channel-width multiplier of the model (``configs.derive_config``).
  epochs, batch_size, optim: training schedule (``optim`` boundaries in epochs).
  voting_steps:  L of eq. (9) and of the prediction rule.
  vote_rule:     'vote' | 'mean_prob' (``evaluate`` module docstring).
  taus:          tuple of (tau1, tau2) pairs; None -> the model's default taus.
  subjects:      held-out subjects to run (fold subset); None -> all.
  checkpoint_every: epochs between checkpoints (the last epoch is always saved).
  model_overrides: extra keyword arguments of ``configs.derive_config``.
  """
  dataset: str
  preset: str
  dataset_kwargs: tuple[tuple[str, Any], ...] = ()
  width_scale: float = 1.0
  epochs: int = 600
  batch_size: int = 27
  optim: OptimConfig = OptimConfig()
  voting_steps: int = 15
  vote_rule: str = 'vote'
  eval_batch_size: int = 32
  taus: tuple[tuple[float, ...], ...] | None = None
  subjects: tuple[int, ...] | None = None
  seed: int = 0
  checkpoint_every: int = 10
  model_overrides: tuple[tuple[str, Any], ...] = ()

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d['dataset_kwargs'] = dict(self.dataset_kwargs)
    d['model_overrides'] = dict(self.model_overrides)
    return d

  @classmethod
  def from_dict(cls, d: dict) -> 'Experiment':
    d = dict(d)
    d['optim'] = OptimConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in d['optim'].items()})
    d['dataset_kwargs'] = tuple(sorted(d['dataset_kwargs'].items()))
    d['model_overrides'] = tuple(sorted(d['model_overrides'].items()))
    if d['taus'] is not None:
      d['taus'] = tuple(tuple(p) for p in d['taus'])
    if d['subjects'] is not None:
      d['subjects'] = tuple(d['subjects'])
    return cls(**d)


def get_experiment(dataset: str, preset: str = 'quick') -> Experiment:
  """The preset experiment for ``dataset``."""
  if dataset not in DATASETS:
    raise ValueError(f'Unknown dataset {dataset!r}; choose one of {DATASETS}.')
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; choose one of {PRESETS}.')
  analogue = ANALOGUE[dataset]
  if preset == 'paper':
    return Experiment(dataset=dataset, preset=preset, width_scale=1.0, epochs=600,
                      batch_size=_PAPER_BATCH[analogue], optim=_PAPER_OPTIM[analogue],
                      voting_steps=15, eval_batch_size=32, checkpoint_every=10)
  if dataset not in SYNTHETIC_DATASETS:
    raise ValueError(f'Preset {preset!r} is meant for the synthetic datasets '
                     f'{SYNTHETIC_DATASETS}; use --preset=paper for {dataset!r}.')
  if preset == 'quick':
    # Measured on synth3a (2-core CPU): ~1 s per fold-epoch for MSTRNN at this width, so 40
    # epochs x 9 folds take ~6 minutes, inside the 10-minute budget of the main job. 20 epochs
    # left the models underfitting (37.86% vs 75.31% at 40; benchmarks/RESULTS.md).
    return Experiment(dataset=dataset, preset=preset, width_scale=0.125, epochs=40,
                      batch_size=16, optim=OptimConfig(lr_values=(0.005, 0.001),
                                                       lr_boundaries=(28,)),
                      voting_steps=5, eval_batch_size=32, checkpoint_every=5)
  return Experiment(dataset=dataset, preset=preset, dataset_kwargs=_TINY_DATA[dataset],
                    width_scale=0.0625, epochs=2,
                    batch_size=4, optim=OptimConfig(lr_values=(0.005,), lr_boundaries=()),
                    voting_steps=3, eval_batch_size=8, checkpoint_every=1)


def model_record(exp: Experiment, model: str, input_size: int, heads, bn_steps: int) -> dict:
  """JSON-able description from which :func:`model_config_from_record` rebuilds the config."""
  if model not in MODELS:
    raise ValueError(f'Unknown model {model!r}; choose one of {MODELS} (or all).')
  return {'model': model, 'input_size': int(input_size),
          'heads': [[h, int(k)] for h, k in heads], 'bn_steps': int(bn_steps),
          'width_scale': float(exp.width_scale),
          # Table I strides for the paper datasets; the configs default for synthetic frames.
          'conv0_stride': ({'weizmann_3acwd': 2, 'cl1ad': 3, 'cl2ad': 3}.get(exp.dataset)),
          'overrides': dict(exp.model_overrides)}


def model_config_from_record(record: dict):
  """``configs.ModelConfig`` from a :func:`model_record`."""
  from mstrnn_jax import configs  # pylint: disable=import-outside-toplevel
  overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in record['overrides'].items()}
  return configs.derive_config(record['model'], record['input_size'],
                               tuple((h, k) for h, k in record['heads']), record['bn_steps'],
                               conv0_stride=record['conv0_stride'],
                               width_scale=record['width_scale'], **overrides)
