"""Data larger than memory: batches read from prepared array_record files in a background thread.

The in-memory path keeps the whole uint8 video array `[N, T_max, H, W, 3]` on every device and
each run's training step gathers `videos[rows]` for its batch rows (`train.epoch_batches`). The
streaming path gathers the same rows on the host, from the prepared files, one step ahead:

```python
src = open_source("folder:/my/videos", data_dir="data")          # or cl1ad, weizmann_3acwd, ...
rows = epoch_rows(keys, epochs, train_idx, n_train, steps, batch)  # int [R, steps, B]
with BatchStream(src, rows, memory_budget=2 * 2**30) as stream:
  for step, videos in enumerate(stream):                         # uint8 [R, B, T_max, H, W, 3]
    ...                                            # == in-memory videos[rows[:, step]]
```

Host memory in use is bounded by `memory_budget`: at most `depth` ready batches wait in the queue,
plus the one being assembled and the one the consumer holds (`BatchStream.depth`).
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from typing import Optional, Protocol

import numpy as np

from mstrnn_jax.data import pipeline
from mstrnn_jax.data.dataset import Dataset


class VideoSource(Protocol):
  """Random access to a dataset's videos in the order of `load_dataset`'s first axis."""

  t_max: int
  frame_size: tuple

  def __len__(self) -> int: ...

  def read(self, i: int) -> np.ndarray:
    """uint8 `[T_i, H, W, 3]`, the video's true frames (no padding)."""


class ArraySource:
  """A loaded `Dataset` as a `VideoSource` (tests, and datasets that fit in memory)."""

  def __init__(self, ds: Dataset):
    self.ds, self.t_max, self.frame_size = ds, ds.t_max, ds.frame_size

  def __len__(self) -> int:
    return len(self.ds)

  def read(self, i: int) -> np.ndarray:
    return self.ds.videos[i, : self.ds.lengths[i]]


def open_source(name: str, data_dir=None, **options) -> VideoSource:
  """The prepared files of a real or `folder:` dataset (preparing them first when needed).

  options: the dataset's preparation options (as for `pipeline.load_dataset`; `crop_margin`
  is accepted and ignored). Synthetic datasets are generated in memory (`ArraySource`).
  """
  key = pipeline.canonical_name(name)
  data_dir = data_dir or pipeline.default_data_dir()
  options = {k: v for k, v in options.items() if k != 'crop_margin'}
  if pipeline.is_folder(key):
    from mstrnn_jax.data import folder

    return folder.Records(folder.prepare(key, data_dir, **options))
  if key in pipeline.SYNTHETIC:
    return ArraySource(pipeline.load_dataset(key, **options))
  from mstrnn_jax.data import builders

  return builders.Records(builders.prepare(key, data_dir, **options))


def gather(source: VideoSource, rows: np.ndarray) -> np.ndarray:
  """`rows` int `[...]` -> uint8 `[..., t_max, H, W, 3]`, each video padded with its last frame
  (exactly `load_dataset(...).videos[rows]`)."""
  rows = np.asarray(rows)
  h, w = source.frame_size
  out = np.empty(rows.shape + (source.t_max, h, w, 3), np.uint8)
  flat = out.reshape((-1, source.t_max, h, w, 3))
  for j, i in enumerate(rows.reshape(-1)):
    v = source.read(int(i))
    flat[j, : len(v)] = v
    flat[j, len(v) :] = v[-1]
  return out


def video_nbytes(source: VideoSource) -> int:
  """Bytes of one padded video `[t_max, H, W, 3]` uint8."""
  h, w = source.frame_size
  return int(source.t_max) * h * w * 3


def dataset_nbytes(num_videos: int, t_max: int, frame_size: tuple) -> int:
  """Bytes of the whole in-memory video array `[N, t_max, H, W, 3]` uint8."""
  return int(num_videos) * int(t_max) * int(frame_size[0]) * int(frame_size[1]) * 3


def default_memory_budget() -> int:
  """A quarter of the machine's physical memory, in bytes (`$MSTRNN_MEMORY_BUDGET` overrides)."""
  if os.environ.get('MSTRNN_MEMORY_BUDGET'):
    return int(float(os.environ['MSTRNN_MEMORY_BUDGET']))
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 4


def should_stream(
  num_videos: int, t_max: int, frame_size: tuple, memory_budget: Optional[int] = None
) -> bool:
  """True when the in-memory video array would exceed `memory_budget` bytes."""
  budget = default_memory_budget() if memory_budget is None else memory_budget
  return dataset_nbytes(num_videos, t_max, frame_size) > budget


def epoch_rows(keys, epochs, train_idx, n_train, steps: int, batch_size: int) -> np.ndarray:
  """Every run's batch rows of one epoch, as the in-memory training step draws them.

  keys: uint32 `[R, 2]` run keys (`TrainState.key`); epochs: int `[R]` (`TrainState.epoch`);
  train_idx: int32 `[R, n_train_max]`; n_train: int32 `[R]` (`train.RunTables`).
  Returns int32 `[R, steps, batch_size]` (= `train.epoch_batches` for each run).
  """
  return np.asarray(_epoch_rows_fn(steps, batch_size)(keys, epochs, train_idx, n_train))


@functools.lru_cache(maxsize=8)
def _epoch_rows_fn(steps: int, batch_size: int):
  import jax

  from mstrnn_jax import train

  return jax.jit(
    jax.vmap(lambda k, e, idx, n: train.epoch_batches(k, e, idx, n, steps, batch_size))
  )


def eval_rows(test_idx: np.ndarray, eval_batch_size: int) -> np.ndarray:
  """`test_idx` int `[R, n]` in chunks as evaluation reads them: `[R, ceil(n / b), b]` (the last
  chunk padded with row 0, as `train.make_programs`' evaluation does)."""
  test_idx = np.asarray(test_idx)
  r, n = test_idx.shape
  chunks = -(-n // eval_batch_size)
  padded = np.zeros((r, chunks * eval_batch_size), test_idx.dtype)
  padded[:, :n] = test_idx
  return padded.reshape(r, chunks, eval_batch_size)


class LazyVideos:
  """The padded video array `[N, t_max, H, W, 3]` uint8 of a `VideoSource`, read on indexing
  (`videos[rows]` = `gather(source, rows)`); a `Dataset` holding it keeps no frames in memory."""

  dtype = np.dtype(np.uint8)
  ndim = 5

  def __init__(self, source: VideoSource):
    self.source = source
    self.shape = (len(source), int(source.t_max), *map(int, source.frame_size), 3)

  @property
  def nbytes(self) -> int:
    return dataset_nbytes(self.shape[0], self.shape[1], self.shape[2:4])

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows) -> np.ndarray:
    return gather(self.source, np.arange(self.shape[0])[rows])

  def __array__(self, dtype=None, copy=None):
    out = self[:]
    return out if dtype is None else out.astype(dtype)


_DONE = object()


class BatchStream:
  """Iterates `videos[rows[:, s]]` for s = 0, 1, ... (uint8 `[R, B, t_max, H, W, 3]`), read by a
  background thread from `source`, never holding more than `memory_budget` bytes of batches.

  rows: int `[R, steps, B]` (`epoch_rows`, `eval_rows`).
  memory_budget: bytes for batches in flight (default `default_memory_budget()`); at least
    3 batches must fit (one being read, one waiting, one in use).
  prefetch: at most this many ready batches wait (fewer when the budget is smaller).
  dedupe: yield `(videos uint8 [U, t_max, H, W, 3], index int32 [R, B])` instead, the U distinct
    videos of the step once each (`videos[index]` is the batch): runs share most training
    videos, so this moves and holds fewer bytes (U <= min(R * B, number of videos)).
  """

  def __init__(
    self,
    source: VideoSource,
    rows: np.ndarray,
    memory_budget: Optional[int] = None,
    prefetch: int = 2,
    dedupe: bool = False,
  ):
    self.source, self.rows, self.dedupe = source, np.asarray(rows), dedupe
    if self.rows.ndim != 3:
      raise ValueError(f'rows must be [runs, steps, batch], got shape {self.rows.shape}')
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)
    per_step = self.rows.shape[0] * self.rows.shape[2]
    self.batch_nbytes = video_nbytes(source) * (min(per_step, len(source)) if dedupe else per_step)
    self.depth = min(int(prefetch), budget // max(self.batch_nbytes, 1) - 2)
    if self.depth < 1:
      raise ValueError(
        f'memory_budget {budget / 2**20:.1f} MiB holds fewer than 3 batches of '
        f'{self.batch_nbytes / 2**20:.1f} MiB ([R={self.rows.shape[0]}, B={self.rows.shape[2]}, '
        f'{source.t_max}, {source.frame_size[0]}, {source.frame_size[1]}, 3] uint8): raise it '
        f'to at least {3 * self.batch_nbytes / 2**20:.0f} MiB or use a smaller batch'
      )
    self._queue = queue.Queue(maxsize=self.depth)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, daemon=True, name='BatchStream')
    self._thread.start()

  def _fill(self) -> None:
    try:
      for s in range(self.rows.shape[1]):
        batch = self._read(self.rows[:, s])
        while not self._stop.is_set():
          try:
            self._queue.put(batch, timeout=0.1)
            break
          except queue.Full:
            continue
        if self._stop.is_set():
          return
      self._put_final(_DONE)
    except BaseException as e:  # handed to the consumer, re-raised there
      self._put_final(e)

  def _read(self, rows: np.ndarray):
    if not self.dedupe:
      return gather(self.source, rows)
    unique, index = np.unique(rows, return_inverse=True)
    return gather(self.source, unique), index.reshape(rows.shape).astype(np.int32)

  def _put_final(self, item) -> None:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return
      except queue.Full:
        continue

  def __len__(self) -> int:
    return int(self.rows.shape[1])

  def __iter__(self):
    for _ in range(len(self)):
      item = self._queue.get()
      if isinstance(item, BaseException):
        self.close()
        raise item
      yield item
    self.close()

  def close(self) -> None:
    """Stops the background thread (also when the iteration is abandoned)."""
    self._stop.set()
    self._thread.join()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
