"""Pipeline: dataset names, LOSO folds, on-device crops."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline
from mstrnn_jax.errors import ArgError


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


def _counting_videos(lengths, t_max):
  """Videos whose frame i is filled with i + 1, padded with their last frame: [N, t_max, 2, 2, 3]."""
  from mstrnn_jax.data.dataset import pad_with_last_frame

  frames = [np.broadcast_to(np.arange(1, n + 1, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3))
            for n in lengths]  # fmt: skip
  return pad_with_last_frame(frames, t_max)


def test_true_lengths_recovers_last_frame_padding():
  videos, lengths = _counting_videos([1, 5, 12, 20], 20)
  np.testing.assert_array_equal(pipeline.true_lengths(jnp.asarray(videos)), lengths)


def test_random_time_warp_keeps_order_start_and_end_and_varies_the_speed():
  lengths = [6, 10, 14, 20, 30] * 8
  videos, lengths = _counting_videos(lengths, 30)
  r = 1.4
  for knots in (1, 3):
    out = np.asarray(
      pipeline.random_time_warp(
        jax.random.key(knots), jnp.asarray(videos), pipeline.TempoWarp(r, knots)
      )
    )
    assert out.shape == videos.shape and out.dtype == np.uint8
    frame = out[:, :, 0, 0, 0].astype(int)  # input frame index + 1 at each output step
    np.testing.assert_array_equal(frame[:, 0], 1)  # starts at the first frame
    np.testing.assert_array_equal(frame[:, -1], lengths)  # reaches the last true frame: never cut
    step = np.diff(frame, axis=1)
    assert step.min() >= 0  # order kept
    warped = (frame < lengths[:, None]).sum(1) + 1  # steps until the last true frame
    # Speeds within [1/r, r] (up to rounding), except that a video too long to slow down fits T.
    assert (warped <= np.minimum(np.ceil(lengths * r) + 1, 30)).all()
    assert (warped >= np.floor((lengths - 1) / r)).all()
    # It does warp: slower and faster versions of videos that have room to slow down.
    room = lengths <= 20
    assert (warped[room] > lengths[room] + 1).any() and (warped[room] < lengths[room] - 1).any()
  # A different key, different speeds; tempo_range 1 is the identity.
  a = pipeline.random_time_warp(jax.random.key(0), jnp.asarray(videos), pipeline.TempoWarp(r, 1))
  b = pipeline.random_time_warp(jax.random.key(1), jnp.asarray(videos), pipeline.TempoWarp(r, 1))
  assert not np.array_equal(a, b)
  same = pipeline.random_time_warp(
    jax.random.key(0), jnp.asarray(videos), pipeline.TempoWarp(1.0, 3)
  )
  np.testing.assert_array_equal(same, videos)


def test_tempo_warp_out_of_range_names_the_field_and_matches_the_config():
  for args, field in (
    ((0.5, 1), 'tempo_range'),
    ((2.0, 0), 'tempo_knots'),
    ((2.0, 2.5), 'tempo_knots'),
  ):
    with pytest.raises(ArgError, match=rf'^TempoWarp: {field} must be ') as e:
      pipeline.TempoWarp(*args)
    assert e.value.field == field
  # A whole float knot count (as a hand-edited experiment.json may hold) becomes the int it is.
  warp = pipeline.TempoWarp(2, 3.0)
  assert type(warp.tempo_range) is float and type(warp.tempo_knots) is int
  videos = jnp.zeros((2, 6, 1, 1, 3), jnp.uint8)
  assert pipeline.random_time_warp(jax.random.key(0), videos, warp).shape == videos.shape
  # The experiment's augment fields are TempoWarp's, defaults included.
  assert dict(ec.get_config('quick', 'synth3a').augment) == dataclasses.asdict(pipeline.TempoWarp())
  assert ec.tempo_warp(
    ec.override(ec.get_config('quick', 'synth3a'), {'augment.tempo_knots': 3})
  ) == (pipeline.TempoWarp(1.0, 3))


def test_random_time_warp_knots_change_the_speed_along_a_video():
  """With one knot a video's steps are one speed; with three they speed up and slow down."""
  videos, _ = _counting_videos([240] * 64, 240)  # only faster, or rescaled to fit: never cut
  r = 2.0

  def spread(knots):
    out = pipeline.random_time_warp(
      jax.random.key(5), jnp.asarray(videos), pipeline.TempoWarp(r, knots)
    )
    frame = np.asarray(out[:, :, 0, 0, 0]).astype(int)
    first, second = frame[:, 60] - frame[:, 0], frame[:, 120] - frame[:, 60]  # before the end
    return np.abs(np.log(second / first))

  assert spread(1).max() < 0.05  # one speed: both stretches advance alike
  assert np.median(spread(3)) > 0.1
