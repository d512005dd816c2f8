"""toy_videos.count_events and benchmarks/count_probe.py: only the number of events differs."""

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


def events(ds, amplitude: float) -> np.ndarray:
  """The number of events per clip, read from the pixels: runs of frames in which the square
  sits `amplitude / 2` above its rest row (bob) or is that much brighter (blink)."""
  v = ds.videos.astype(np.float32)
  background = np.median(v, axis=(1, 2, 3), keepdims=True)  # the square covers < 3% of a frame
  square = np.abs(v - background).sum(-1) > 60  # [clips, T, H, W]
  rows = np.arange(v.shape[2])[None, None, :, None]
  if ds.name == 'count_bob':
    y = (square * rows).sum((2, 3)) / square.sum((2, 3))
    up = y < y[:, :1] - amplitude / 2  # frame 0 is before every window
  else:
    level = (v.sum(-1) * square).sum((2, 3)) / square.sum((2, 3))
    up = level > level[:, :1] + 3 * 255 * amplitude / 2
  return (np.diff(up.astype(int), axis=1) == 1).sum(1)


@pytest.mark.parametrize('kind, amplitude', [('bob', 8.0), ('blink', 0.35)])
def test_the_count_is_in_the_events_only(kind, amplitude):
  ds = toy_videos.count_events(kind, amplitude=amplitude, subjects=3, clips_per_subject=8)
  assert ds.videos.shape == (24, 22, 36, 36, 3) and ds.heads == (('count', 2),)
  np.testing.assert_array_equal(events(ds, amplitude), ds.labels['count'] + 2)
  np.testing.assert_array_equal(ds.lengths, 22)
  np.testing.assert_array_equal(np.bincount(ds.subjects), 8)
  np.testing.assert_array_equal(np.bincount(ds.labels['count']), 12)


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
