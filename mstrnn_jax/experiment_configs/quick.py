"""``quick`` preset: narrow models and 40 epochs, all LOSO folds in minutes on a 2-core CPU.

Measured on synth3a (2-core CPU): ~1 s per fold-epoch for MSTRNN at this width, so 40 epochs x
9 folds take ~6 minutes.  20 epochs left the models underfitting (37.86% vs 75.31% at 40;
benchmarks/RESULTS.md).  On the real datasets the frames are resized to 40 pixels.
"""

from ml_collections import config_dict

from mstrnn_jax import names
from mstrnn_jax.experiment_configs import base

REAL_FRAME_SIZE = 40  # real datasets: crop 35 (3ACWD) / 37 (CL1AD, CL2AD)


def get_config(dataset: str = 'synth3a') -> config_dict.ConfigDict:
  c = base.get_config(dataset, 'quick')
  if c.dataset in names.PAPER_DATASETS:
    c.data[c.dataset].frame_size = REAL_FRAME_SIZE
  c.width_scale = 0.125
  c.epochs = 40
  c.batch_size = 16
  c.voting_steps = 5
  c.optim.update(dict(lr_values=(0.005, 0.001), lr_boundaries=(28,)))
  c.checkpoint_every = 5
  # Population BN statistics from 4 batches (64 videos, ~30% of a fold's training set) instead
  # of all of them: fixed a priori for cost (docs/fidelity.md measures the difference).
  c.population_batches = 4
  # MSTRNN's first FC layer reads both context layers: at width 1/8 the top one alone is
  # 1x1x32 and MSTRNN underfits (training accuracy 68% vs 93% at 40 epochs). Chosen on
  # training and validation subjects, never test subjects (docs/fidelity.md section 0b).
  c.model_overrides.fc_input = 'contexts'
  return c
