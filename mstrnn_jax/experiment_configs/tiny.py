"""``tiny`` preset: a few-second configuration for tests and smoke runs.

Synthetic datasets shrink to 3 subjects and short videos (the frame size stays 36: a
2-context-layer MSTRNN needs a crop of at least 30 pixels); real ones are resized like
``quick``'s; a ``folder:PATH`` is prepared at 36 pixels with a crop of 32.
"""

from ml_collections import config_dict

from mstrnn_jax import names
from mstrnn_jax.experiment_configs import base, quick

_SMALL_DATA = {
  'synth3a': dict(frames_per_primitive=3, num_subjects=3),
  'synthcl1': dict(frames_per_video=8, num_subjects=3, videos_per_category=1),
  'synthcl2': dict(frames_per_video=8, num_subjects=3, videos_per_triplet=1),
  # folder:PATH: frames of 36 cropped to 32 (data/toy_videos.py writes 36x36 clips)
  base.FOLDER_KEY: dict(frame_size=36, crop_margin=4),
}


def get_config(dataset: str = 'synth3a') -> config_dict.ConfigDict:
  c = base.get_config(dataset, 'tiny')
  if c.dataset in names.PAPER_DATASETS:
    c.data[c.dataset].frame_size = quick.REAL_FRAME_SIZE
  else:
    c.data[base.data_key(c.dataset)].update(_SMALL_DATA[base.data_key(c.dataset)])
  c.width_scale = 0.0625
  c.epochs = 2
  c.batch_size = 4
  c.voting_steps = 3
  c.eval_batch_size = 8
  c.optim.update(dict(lr_values=(0.005,), lr_boundaries=()))
  c.checkpoint_every = 1
  c.population_batches = 2
  return c
