"""Streaming batches from prepared files == indexing the in-memory video array."""

import numpy as np
import pytest

from mstrnn_jax.data import pipeline, stream, toy_videos
from test_builders import make_weizmann

SIZE = 16


@pytest.fixture
def folder_ds(tmp_path):
  """Clips of different lengths (padding matters) as a prepared folder: dataset."""
  root = toy_videos.make_folder(tmp_path / 'videos', subjects=3, length=5, size=SIZE)
  toy_videos.write_clip(
    root / 'subject1' / 'left' / 'long.avi',
    toy_videos.moving_square('left', 9, SIZE, np.random.default_rng(1)),
  )
  name = f'folder:{root}'
  ds = pipeline.load_dataset(name, data_dir=tmp_path / 'data', frame_size=SIZE)
  return name, tmp_path / 'data', ds


def fold_tables(ds):
  """Per-run index tables of the LOSO runs (as train.RunTables holds them)."""
  folds = pipeline.loso_folds(ds)
  width = max(len(f.train_idx) for f in folds)
  train_idx = np.zeros((len(folds), width), np.int32)
  for r, f in enumerate(folds):
    train_idx[r, : len(f.train_idx)] = f.train_idx
  n_train = np.array([len(f.train_idx) for f in folds], np.int32)
  test_width = max(len(f.test_idx) for f in folds)
  test_idx = np.zeros((len(folds), test_width), np.int32)
  for r, f in enumerate(folds):
    test_idx[r, : len(f.test_idx)] = f.test_idx
  return train_idx, n_train, test_idx


def test_stream_equals_in_memory_indexing(folder_ds):
  name, data_dir, ds = folder_ds
  assert ds.t_max == 9 and ds.lengths.min() == 5
  train_idx, n_train, test_idx = fold_tables(ds)
  runs = len(n_train)
  keys = np.stack([np.array([0, r], np.uint32) for r in range(runs)])
  steps, batch = 3, 4
  source = stream.open_source(name, data_dir, frame_size=SIZE, crop_margin=2)
  for epoch in (0, 1):
    rows = stream.epoch_rows(keys, np.full(runs, epoch, np.int32), train_idx, n_train, steps,
                             batch)  # fmt: skip
    assert rows.shape == (runs, steps, batch)
    for r in range(runs):  # each run draws only its own training rows
      assert set(rows[r].ravel()) <= set(train_idx[r, : n_train[r]])
    with stream.BatchStream(source, rows, memory_budget=10 * 2**20) as batches:
      got = list(batches)
    assert len(got) == steps
    for s, videos in enumerate(got):
      assert videos.dtype == np.uint8 and videos.shape == (runs, batch, 9, SIZE, SIZE, 3)
      np.testing.assert_array_equal(videos, ds.videos[rows[:, s]])
  rows = stream.eval_rows(test_idx, 3)
  for s, videos in enumerate(stream.BatchStream(source, rows, memory_budget=10 * 2**20)):
    np.testing.assert_array_equal(videos, ds.videos[rows[:, s]])
  # dedupe: each distinct video once per step, plus the index that rebuilds the batch
  rows = stream.epoch_rows(keys, np.zeros(runs, np.int32), train_idx, n_train, steps, batch)
  for s, (videos, index) in enumerate(stream.BatchStream(source, rows, 10 * 2**20, dedupe=True)):
    assert len(videos) == len(np.unique(rows[:, s])) < runs * batch
    np.testing.assert_array_equal(videos[index], ds.videos[rows[:, s]])


def test_real_dataset_source_equals_load(tmp_path):
  make_weizmann(tmp_path / 'downloads' / 'weizmann_3acwd', ('daria',))
  ds = pipeline.load_dataset('3acwd', data_dir=tmp_path)
  source = stream.open_source('3acwd', data_dir=tmp_path)
  rows = np.array([[[0, 26], [5, 5]]])
  np.testing.assert_array_equal(np.stack(list(stream.BatchStream(source, rows, 2**30))),
                                ds.videos[rows[0]][:, None])  # fmt: skip


def test_budget_bounds_prefetch_and_errors(folder_ds):
  ds = folder_ds[2]
  source = stream.ArraySource(ds)
  rows = np.zeros((2, 5, 3), np.int32)
  batch = 2 * 3 * stream.video_nbytes(source)
  assert stream.BatchStream(source, rows, memory_budget=3 * batch).depth == 1
  assert stream.BatchStream(source, rows, memory_budget=100 * batch, prefetch=4).depth == 4
  with pytest.raises(ValueError, match='memory_budget .* holds fewer than 3 batches'):
    stream.BatchStream(source, rows, memory_budget=3 * batch - 1)
  assert stream.should_stream(len(ds), ds.t_max, ds.frame_size, ds.videos.nbytes - 1)
  assert not stream.should_stream(len(ds), ds.t_max, ds.frame_size, ds.videos.nbytes)


def test_reader_errors_reach_the_consumer(folder_ds):
  _, _, ds = folder_ds
  rows = np.array([[[0], [len(ds)]]])  # second step: a row past the end
  batches = iter(stream.BatchStream(stream.ArraySource(ds), rows, 2**30))
  np.testing.assert_array_equal(next(batches), ds.videos[[[0]]])
  with pytest.raises(IndexError):
    next(batches)


def test_abandoned_stream_stops_its_thread(folder_ds):
  _, _, ds = folder_ds
  s = stream.BatchStream(stream.ArraySource(ds), np.zeros((1, 50, 2), np.int32), 2**30)
  next(iter(s))
  s.close()
  assert not s._thread.is_alive()
