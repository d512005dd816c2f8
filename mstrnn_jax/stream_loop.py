"""Data larger than memory in the engine: the epoch programs fed from ``data.stream.BatchStream``.

When a ``folder:PATH`` dataset's padded video array would exceed the memory budget
(``config.data_memory_budget_mib``, default ``stream.default_memory_budget()``) or
``config.stream == 'always'``, :func:`load_folder` returns a ``Dataset`` whose videos stay in the
prepared array_record files (``stream.LazyVideos``) and the epoch loop gets
:class:`StreamedPrograms` instead of ``train.Programs``: the same ``init`` / ``train_epoch`` /
``evaluate`` interface, but every step's batch rows (``stream.epoch_rows``, the in-memory
program's rows) are read by a background thread and fed to a per-step program over the run axis
(``train.make_step_programs``: same crop keys, same arithmetic).  All runs still train in one
program per step; only the host holds no more than the budget of frames.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from mstrnn_jax import experiment_configs as ec
from mstrnn_jax import parallel, train
from mstrnn_jax.data import pipeline, stream
from mstrnn_jax.data.dataset import Dataset
from mstrnn_jax.plan import program_options

STREAM_MODES = ('auto', 'never', 'always')
# Streamed evaluation normalises with the stored running statistics only: the 'population' and
# 'subject' modes of train.make_programs need the training / test videos at hand.
STREAMED_EVAL_STATS = ('running',)


def memory_budget(config: config_dict.ConfigDict) -> int:
  """Bytes: ``config.data_memory_budget_mib`` or ``stream.default_memory_budget()``."""
  mib = config.get('data_memory_budget_mib')
  return stream.default_memory_budget() if mib is None else int(mib * 2**20)


def stream_mode(config: config_dict.ConfigDict) -> str:
  """``config.stream`` checked; 'always' needs a folder:PATH dataset."""
  mode = config.get('stream', 'auto')
  if mode not in STREAM_MODES:
    raise ValueError(f'config.stream: {mode!r}; use one of {", ".join(STREAM_MODES)}.')
  if mode == 'always' and not pipeline.is_folder(config.dataset):
    raise ValueError(
      "config.stream='always' streams folder:PATH datasets only; "
      f'{config.dataset} is loaded into memory (use --config.stream=auto).'
    )
  return mode


def load_folder(config: config_dict.ConfigDict, data_dir: str | None = None) -> Dataset:
  """The folder dataset of ``config``: streamed (lazy videos) when ``stream_mode`` says so or
  its video array exceeds :func:`memory_budget`, else in memory."""
  mode = stream_mode(config)
  ds = pipeline.load_dataset(
    config.dataset, data_dir=data_dir, lazy=True, **ec.dataset_kwargs(config)
  )
  streamed = mode == 'always' or (mode == 'auto' and ds.videos.nbytes > memory_budget(config))
  if not streamed:
    return dataclasses.replace(ds, videos=ds.videos[:])
  if tuple(config.eval_stats) != STREAMED_EVAL_STATS or config.validation_subjects:
    raise ValueError(
      f'{config.dataset} is streamed from its files ({ds.videos.nbytes / 2**20:.0f} MiB of '
      'videos; config.stream, config.data_memory_budget_mib), which evaluates with the stored '
      'running statistics and without validation subjects only: pass '
      '--config.eval_stats=running --config.validation_subjects=0, or a larger budget.'
    )
  return ds


def is_streamed(ds: Dataset) -> bool:
  return isinstance(ds.videos, stream.LazyVideos)


class StreamedPrograms:
  """``train.Programs``' interface over streamed batches (the ``videos`` arguments are unused).

  tables: the padded host run tables (``train.RunTables`` of numpy arrays, R padded);
  labels: int32 [N, n_heads] on the host; shard: the run-axis sharding.
  """

  eval_stats = STREAMED_EVAL_STATS

  def __init__(
    self,
    steps: train.StepPrograms,
    init,
    source: stream.VideoSource,
    tables: train.RunTables,
    labels: np.ndarray,
    *,
    batch_size: int,
    eval_batch_size: int,
    budget: int,
    shard,
  ):
    self.steps, self.init, self.source = steps, init, source
    self.tables, self.labels, self.shard = tables, labels, shard
    self.batch_size, self.eval_batch_size, self.budget = batch_size, eval_batch_size, budget
    self.steps_per_epoch = steps.steps_per_epoch
    self._taus = parallel.put(np.asarray(tables.taus), shard)

  def _batches(self, rows: np.ndarray):
    """(videos, labels) device batches of ``rows`` [R, steps, B], read one step ahead."""
    with stream.BatchStream(self.source, rows, memory_budget=self.budget) as batches:
      for s, videos in enumerate(batches):
        yield s, parallel.put(videos, self.shard), parallel.put(self.labels[rows[:, s]], self.shard)

  def train_epoch(self, states, videos=None, labels=None, tables=None):
    """One epoch of every run: (states, ``train.EpochMetrics`` [R, steps, ...])."""
    del videos, labels, tables
    keys, epochs = jax.device_get((states.key, states.epoch))
    rows = stream.epoch_rows(
      keys,
      epochs,
      self.tables.train_idx,
      self.tables.n_train,
      self.steps_per_epoch,
      self.batch_size,
    )
    metrics = []
    for s, v, lab in self._batches(rows):
      states, m = self.steps.train_step(states, v, lab, self._taus, jnp.int32(s))
      metrics.append(m)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *metrics)
    return self.steps.end_epoch(states), train.EpochMetrics(*stacked)

  def evaluate(self, states, videos=None, labels=None, tables=None) -> train.EvalFlags:
    """Correct flags of every run's held-out videos, ``test``: int32 [R, 1 (running), n_test_max,
    n_heads + 1]."""
    del videos, labels, tables
    test_idx = np.asarray(self.tables.test_idx)
    rows = stream.eval_rows(test_idx, self.eval_batch_size)
    flags = [self.steps.evaluate(states, v, lab, self._taus) for _, v, lab in self._batches(rows)]
    test = jnp.concatenate(flags, axis=1)[:, None, : test_idx.shape[1]]
    return train.EvalFlags(test=test, val=None)


def streamed_programs(
  p, cfg, init, tables_np: train.RunTables, n_pad: int, mesh, run_chunk
) -> StreamedPrograms:
  """:class:`StreamedPrograms` of plan ``p`` for model config ``cfg`` (tables unpadded); ``init``
  is the in-memory programs' ``init`` (the same initial states)."""
  c, ds = p.config, p.dataset
  steps = train.make_step_programs(
    train.model_fns(cfg), ec.optim_config(c), **program_options(p), mesh=mesh, run_chunk=run_chunk
  )
  tables = jax.tree.map(np.asarray, parallel.pad_runs(tables_np, n_pad))
  return StreamedPrograms(
    steps,
    init,
    ds.videos.source,
    tables,
    train.stack_labels(ds.labels, ds.heads),
    batch_size=c.batch_size,
    eval_batch_size=c.eval_batch_size,
    budget=memory_budget(c),
    shard=parallel.run_sharding(mesh),
  )
