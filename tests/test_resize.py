"""data/resize.py: smaller frames for quick runs on the real datasets."""

import numpy as np
import pytest

from mstrnn_jax.data.dataset import Dataset
from mstrnn_jax.data.resize import resize_frames


def _dataset(size=20, crop=16):
  rng = np.random.default_rng(0)
  videos = np.zeros((2, 3, size, size, 3), np.uint8)
  videos[0] = 200  # a flat video stays flat
  videos[1] = rng.integers(0, 256, (3, size, size, 3))
  return Dataset(
    name='fake',
    videos=videos,
    lengths=np.array([3, 3], np.int32),
    labels={'action': np.array([0, 1], np.int32)},
    heads=(('action', 2),),
    class_names={'action': ['a', 'b']},
    subjects=np.array([0, 1], np.int32),
    subject_names=['s0', 's1'],
    crop_size=crop,
  )


def test_resize_scales_frames_and_crop():
  out = resize_frames(_dataset(), 10)
  assert out.videos.shape == (2, 3, 10, 10, 3) and out.videos.dtype == np.uint8
  assert out.crop_size == 8
  assert np.all(out.videos[0] == 200)
  np.testing.assert_allclose(out.videos[1].mean(), _dataset().videos[1].mean(), atol=8)
  ds = _dataset()
  assert resize_frames(ds, 20) is ds


def test_resize_refuses_upsampling():
  with pytest.raises(ValueError, match='frame_size must be in 1..20'):
    resize_frames(_dataset(), 30)
