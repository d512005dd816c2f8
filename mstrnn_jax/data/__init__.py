"""Datasets: synthetic analogues of 3ACWD/CL1AD/CL2AD, real-data TFDS builders, input pipeline."""

from mstrnn_jax.data.dataset import Dataset, DatasetSpec
from mstrnn_jax.data.pipeline import (
  NAMES,
  Fold,
  center_crop,
  dataset_spec,
  default_data_dir,
  load_dataset,
  loso_folds,
  random_crop,
  to_float,
)

__all__ = [
  'NAMES',
  'Dataset',
  'DatasetSpec',
  'Fold',
  'center_crop',
  'dataset_spec',
  'default_data_dir',
  'load_dataset',
  'loso_folds',
  'random_crop',
  'to_float',
]
