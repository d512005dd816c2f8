"""toy_videos.count_events and benchmarks/count_probe.py: clips of 2 or 3 events, equal length."""

import os
import subprocess
import sys

import numpy as np
import pytest

import subproc
from mstrnn_jax.data import pipeline, toy_videos


def probe(*args):
  script = os.path.join(subproc.ROOT, 'benchmarks', 'count_probe.py')
  return subprocess.run(
    [sys.executable, script, *args], env=subproc.cpu_env(), capture_output=True, text=True
  )


def square_rows(ds) -> tuple:
  """Per clip and frame: float pixels `[clips, T, H, W, 3]`, the square's mask (pixels far from
  the clip's median colour; the square covers < 3% of a frame) and its mean row `[clips, T]`."""
  v = ds.videos.astype(np.float32)
  square = np.abs(v - np.median(v, axis=(1, 2, 3), keepdims=True)).sum(-1) > 60
  rows = np.arange(v.shape[2])[None, None, :, None]
  return v, square, (square * rows).sum((2, 3)) / square.sum((2, 3))


def events(ds, amplitude: float) -> np.ndarray:
  """The number of events per clip, read from the pixels: runs of frames in which the square
  sits `amplitude / 2` above its rest row (bob) or is that much brighter (blink)."""
  v, square, y = square_rows(ds)
  if ds.name == 'count_bob':
    up = y < y[:, :1] - amplitude / 2  # frame 0 is before every window
  else:
    level = (v.sum(-1) * square).sum((2, 3)) / square.sum((2, 3))
    up = level > level[:, :1] + 3 * 255 * amplitude / 2
  return (np.diff(up.astype(int), axis=1) == 1).sum(1)


@pytest.mark.parametrize(
  'kind, amplitude, subframe', [('bob', 8.0, False), ('blink', 0.35, False), ('bob', 8.0, True)]
)
def test_clips_hold_2_or_3_events_and_equal_sums(kind, amplitude, subframe):
  ds = toy_videos.count_events(
    kind, amplitude=amplitude, subjects=3, clips_per_subject=8, subframe=subframe
  )
  assert ds.videos.shape == (24, 22, 36, 36, 3) and ds.heads == (('count', 2),)
  np.testing.assert_array_equal(events(ds, amplitude), ds.labels['count'] + 2)
  np.testing.assert_array_equal(ds.lengths, 22)
  np.testing.assert_array_equal(np.bincount(ds.subjects), 8)
  np.testing.assert_array_equal(np.bincount(ds.labels['count']), 12)
  # the summed signal does not tell the count: the same mean over the clips of each class
  v = ds.videos.astype(np.float64)
  total = np.abs(v - np.median(v, axis=(1, 2, 3), keepdims=True)).sum((1, 2, 3, 4))
  by_class = [total[ds.labels['count'] == c] for c in (0, 1)]
  assert abs(by_class[0].mean() / by_class[1].mean() - 1) < 0.02


def heights(ds) -> list:
  """Per class, the set of bob heights (pixels above the rest row) that occur in its clips."""
  _, _, y = square_rows(ds)
  up = np.round(y[:, :1] - y).astype(int)
  return [set(up[ds.labels['count'] == c].ravel()) - {0} for c in (0, 1)]


def test_subframe_removes_the_height_cue():
  on_frames = heights(toy_videos.count_events('bob', amplitude=8, subjects=2, clips_per_subject=28))
  assert (
    {2, 6} <= on_frames[0] and 4 in on_frames[1] and not ({2, 4, 6} & on_frames[0] & on_frames[1])
  )
  jittered = heights(
    toy_videos.count_events('bob', amplitude=8, subjects=2, clips_per_subject=28, subframe=True)
  )
  assert {2, 4, 6} <= jittered[0] & jittered[1]


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match="kind='wave'"):
    toy_videos.count_events('wave')
  with pytest.raises(ValueError, match='amplitude=30'):
    toy_videos.count_events('bob', amplitude=30)
  with pytest.raises(ValueError, match='window=20'):
    toy_videos.count_events('bob', window=20)


def test_cli_writes_a_folder_dataset(tmp_path):
  out = tmp_path / 'bob'
  args = ['--kind=bob', '--side=3', '--amplitude=5', f'--out={out}']
  r = probe(*args)
  assert r.returncode == 0, r.stderr
  ds = pipeline.load_dataset(f'folder:{out}', tmp_path / 'data', frame_size=36, crop_margin=4)
  ref = toy_videos.count_events('bob', side=3, amplitude=5)
  assert ds.class_names == {'class': ['2_times', '3_times']}
  order = np.lexsort((np.arange(280), ref.labels['count'], ref.subjects))  # subject, class, clip
  np.testing.assert_array_equal(ds.videos, ref.videos[order])
  np.testing.assert_array_equal(ds.labels['class'], ref.labels['count'][order])
  again = probe(*args)
  assert again.returncode != 0 and 'exists' in again.stderr
