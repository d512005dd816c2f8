"""Pipeline: dataset names, LOSO folds, on-device crops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax.data import pipeline


def _coded_videos(b=3, t=4, h=9, w=11):
  """Videos whose pixel values encode (video, time, y, x), so a crop reveals its offset."""
  v, tt, y, x = np.meshgrid(np.arange(b), np.arange(t), np.arange(h), np.arange(w), indexing='ij')
  return np.stack([v * 10 + tt, y, x], -1).astype(np.int32)


def test_random_crop_one_offset_per_video_and_all_offsets_reached():
  videos = _coded_videos()
  size = 6
  seen = set()
  crop = jax.jit(lambda k, v: pipeline.random_crop(k, v, size))
  for i in range(60):
    out = np.asarray(crop(jax.random.key(i), jnp.asarray(videos)))
    assert out.shape == (3, 4, size, size, 3)
    for b in range(3):
      y0, x0 = out[b, 0, 0, 0, 1], out[b, 0, 0, 0, 2]
      np.testing.assert_array_equal(out[b], videos[b, :, y0 : y0 + size, x0 : x0 + size])
      seen.add((int(y0), int(x0)))
  assert seen == {(y, x) for y in range(9 - size + 1) for x in range(11 - size + 1)}


def test_random_crop_differs_between_videos_and_keys():
  videos = jnp.asarray(_coded_videos(b=16))
  a = np.asarray(pipeline.random_crop(jax.random.key(0), videos, 5))
  b = np.asarray(pipeline.random_crop(jax.random.key(1), videos, 5))
  assert len({(v[0, 0, 0, 1], v[0, 0, 0, 2]) for v in a}) > 1
  assert not (a == b).all()


def test_center_crop_known_values():
  videos = _coded_videos(h=10, w=12)
  out = np.asarray(pipeline.center_crop(jnp.asarray(videos), 6))
  np.testing.assert_array_equal(out, videos[:, :, 2:8, 3:9])
  with pytest.raises(ValueError, match='larger than the frames'):
    pipeline.center_crop(jnp.asarray(videos), 11)


def test_names_and_aliases():
  assert pipeline.canonical_name('3ACWD') == 'weizmann_3acwd'
  with pytest.raises(ValueError, match='synth3a.*cl2ad'):
    pipeline.load_dataset('kinetics')


def test_loso_folds_partition_by_subject():
  ds = pipeline.load_dataset('synth3a', frame_size=16, crop_margin=2, num_subjects=4)
  folds = pipeline.loso_folds(ds)
  assert [f.test_subject for f in folds] == [0, 1, 2, 3]
  for f in folds:
    assert (ds.subjects[f.test_idx] == f.test_subject).all()
    assert (ds.subjects[f.train_idx] != f.test_subject).all()
    assert len(f.train_idx) + len(f.test_idx) == len(ds)
  np.testing.assert_array_equal(
    np.sort(np.concatenate([f.test_idx for f in folds])), np.arange(len(ds))
  )
  spec = pipeline.dataset_spec('synth3a', frame_size=16, crop_margin=2, num_subjects=4)
  assert (spec.t_max, spec.num_videos, spec.crop_size) == (ds.t_max, len(ds), ds.crop_size)
