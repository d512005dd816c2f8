"""The epoch loop: drives one model family's compiled programs over all its runs.

Every (tau pair, held-out subject) is a *run*; all runs of a model train together in the
programs of :mod:`mstrnn_jax.train` (vmapped over runs, sharded over devices by
:mod:`mstrnn_jax.parallel`).  After every epoch each run's held-out subject is evaluated; the
caller's ``on_epoch`` writes the history, checkpoints go out every ``checkpoint_every`` epochs
and at the end, and ``resume=True`` continues from the newest checkpoint (the same final numbers
as an uninterrupted run on the same machine).
"""

from __future__ import annotations

import bisect
import math
import os
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from mstrnn_jax import checkpoint, evaluate, parallel, results, stream_loop, train
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.model_records import model_config_from_record
from mstrnn_jax.plan import Plan, build_tables, program_options, run_table
from mstrnn_jax.workdir import is_writer


# Time constants below this are named as a possible cause of a non-finite loss.
SMALL_TAU = 2.0


class NonFiniteLossError(RuntimeError):
  """Raised when a run's training loss stops being finite."""


class Setup(NamedTuple):
  """The compiled-once programs of one model and their device arguments."""

  programs: train.Programs
  runs: list
  videos: jax.Array  # uint8 [N, T, H, W, 3], replicated
  labels: jax.Array  # int32 [N, n_heads], replicated
  tables: train.RunTables  # leading axis R padded to the device count, sharded
  keys: jax.Array  # uint32 [R_padded, 2] initialisation keys, sharded
  batch_keys: Any  # uint32 [R_padded, 2] batch-order keys (sharded), or None: from keys
  test_mask: np.ndarray  # bool [R, n_test_max] (unpadded, host)
  shard: Any  # the run-axis sharding
  val_mask: np.ndarray | None = None  # bool [R, n_val_max] (host), or None: no validation


def run_keys(seed: int, runs: list[dict]) -> np.ndarray:
  """uint32 [R, 2]: one key per run, from ``seed`` and the run's held-out subject (fold).

  Not from the run's position: fold k gets the same initialisation and batch order whether it
  runs alone (``--subjects=k``) or among all folds, and every (tau1, tau2) pair of a fold starts
  from the same weights (a paired sweep).
  """
  return np.stack(
    [
      np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(seed), r['test_subject'])))
      for r in runs
    ]
  )


def setup(
  p: Plan, model: str, mesh=None, runs: list | None = None, run_chunk: int | None | str = 'auto'
) -> Setup:
  """Builds the programs of ``model`` and puts the dataset and run tables on the devices.

  ``runs`` defaults to :func:`plan.run_table`; per-run keys derive from the seeds
  (``config.seed`` / ``config.seeds``) and each run's held-out subject (:func:`run_keys`).
  """
  c, ds = p.config, p.dataset
  cfg = model_config_from_record(p.model_records[model])
  runs = run_table(p, model) if runs is None else runs
  mesh = parallel.make_mesh() if mesh is None else mesh
  n_pad = parallel.padded_size(len(runs), mesh)
  shard, repl = parallel.run_sharding(mesh), parallel.replicated(mesh)
  programs = train.make_programs(
    train.model_fns(cfg),
    ec.optim_config(c),
    **program_options(p),
    eval_batch_size=c.eval_batch_size,
    eval_stats=tuple(c.eval_stats),
    population_batches=c.population_batches,
    mesh=mesh,
    run_chunk=run_chunk,
  )
  tables_np = build_tables(p, runs)
  init_seed, batch_seed = ec.run_seeds(c)
  put_runs = lambda x: parallel.put(parallel.pad_runs(x, n_pad), shard)  # noqa: E731
  streamed = stream_loop.is_streamed(ds)
  if streamed:  # data larger than memory: batches read from the files (stream_loop)
    programs = stream_loop.streamed_programs(
      p, cfg, programs.init, tables_np, n_pad, mesh, run_chunk
    )
  return Setup(
    programs=programs,
    runs=runs,
    videos=None if streamed else parallel.put(ds.videos, repl),
    labels=parallel.put(train.stack_labels(ds.labels, ds.heads), repl),
    tables=put_runs(tables_np),
    keys=put_runs(run_keys(init_seed, runs)),
    batch_keys=None if batch_seed is None else put_runs(run_keys(batch_seed, runs)),
    test_mask=tables_np.test_mask,
    shard=shard,
    val_mask=tables_np.val_mask,
  )


def initial_states(e: Setup):
  """Fresh stacked train states; their batch-order keys replaced when seeded separately."""
  states = e.programs.init(e.keys)
  return states if e.batch_keys is None else states.replace(key=e.batch_keys)


def train_model(
  p: Plan,
  model: str,
  workdir: str,
  *,
  resume: bool,
  mesh=None,
  progress: bool = True,
  on_epoch: Callable[[dict], None] | None = None,
) -> dict:
  """Trains every run of ``model`` for ``config.epochs`` epochs; returns its history.

  ``on_epoch(result_so_far)`` is called after every epoch (and its checkpoint) with the same
  structure as the return value (:func:`results.result`).  History keys: ``train_loss``,
  ``train_acc``, ``test_acc`` (under the first ``config.eval_stats`` mode) and
  ``test_acc_<mode>`` for every mode; with validation subjects also ``val_acc`` and
  ``val_acc_<mode>``.
  """
  c = p.config
  e = setup(p, model, mesh)
  n_runs = len(e.runs)
  modes = e.programs.eval_stats
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints', model))
  sets = ('test', 'val') if e.val_mask is not None else ('test',)
  history = {
    k: []
    for k in ['train_loss', 'train_acc']
    + [f'{s}_acc{suffix}' for s in sets for suffix in [''] + [f'_{m}' for m in modes]]
  }
  start = 0
  target = jax.eval_shape(e.programs.init, e.keys)
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=e.shard), target)
  newest = ckpt.restore_newest(target, move_aside=is_writer()) if resume else None
  if newest is not None:
    _, states, meta = newest
    history = {k: list(np.asarray(v).swapaxes(0, 1)) for k, v in meta['history'].items()}
    start = int(meta['epoch'])
  else:
    states = initial_states(e)

  events = results.EventLog(os.path.join(workdir, 'events', model)) if is_writer() else None
  t0 = time.time()
  bar = _progress(total=c.epochs, initial=start, desc=f'{model} ({n_runs} runs)', enabled=progress)
  try:
    for epoch in range(start, c.epochs):
      states, m = e.programs.train_epoch(states, e.videos, e.labels, e.tables)
      flags = e.programs.evaluate(states, e.videos, e.labels, e.tables)
      population = flags.population  # stays on the devices; checkpoints keep it
      m, flags = parallel.to_host((m, {'test': flags.test, 'val': flags.val}))
      loss = m.loss[:n_runs]
      _check_finite(loss, e.runs, model, epoch, workdir, c, ckpt.latest_epoch())
      counts = m.count[:n_runs].sum(axis=1)
      train_acc = 100.0 * m.correct[:n_runs].sum(axis=1) / counts[:, None]
      history['train_loss'].append(loss.mean(axis=1))
      history['train_acc'].append(train_acc)
      for s, mask in (('test', e.test_mask), ('val', e.val_mask))[: len(sets)]:
        for k, mode in enumerate(modes):
          acc = evaluate.accuracies(flags[s][:n_runs, k], mask)
          history[f'{s}_acc_{mode}'].append(acc)
          if k == 0:
            history[f'{s}_acc'].append(acc)
      test_acc = history['test_acc'][-1]
      done = epoch + 1
      if events is not None:
        events.scalars(done, results.epoch_scalars(e.runs, history, p.dataset.heads))
      res = results.result(e.runs, history, time.time() - t0)
      if done % c.checkpoint_every == 0 or done == c.epochs:
        ckpt.save(
          done,
          states,
          {'epoch': done, 'history': results.history_lists(res['history'])},
          population=population,
        )
      if on_epoch is not None:
        on_epoch(res)
      bar.update(1)
      bar.set_postfix(
        loss=f'{loss.mean():.3f}',
        train_acc=f'{train_acc[:, -1].mean():.1f}',
        test_acc=f'{test_acc[:, -1].mean():.1f}',
      )
  finally:
    bar.close()
    if events is not None:
      events.close()
    ckpt.close()
  return results.result(e.runs, history, time.time() - t0)


def _check_finite(
  loss: np.ndarray,
  runs: list[dict],
  model: str,
  epoch: int,
  workdir: str,
  c,
  kept_epoch: int | None,
) -> None:
  """Raises NonFiniteLossError naming the run, epoch and step of the first non-finite loss, the
  likely causes and the checkpoint that stays (``kept_epoch``)."""
  if np.all(np.isfinite(loss)):
    return
  r, s = np.argwhere(~np.isfinite(loss))[0]
  run = runs[r]
  kept = (
    f'the checkpoint of epoch {kept_epoch} (resume from it with --resume)'
    if kept_epoch is not None
    else 'no checkpoint (none was written yet)'
  )
  raise NonFiniteLossError(
    f'{model}: non-finite training loss in run {r} (held-out subject '
    f'{run["subject_name"]}, taus {run["taus"]}) at epoch {epoch + 1}, step {s + 1}; '
    f'stopped. Results up to epoch {epoch} and {kept} stay in {workdir}. Likely causes: '
    f'{"; ".join(nonfinite_causes(c, run, epoch))}.'
  )


def nonfinite_causes(c, run: dict, epoch: int) -> list[str]:
  """The likely causes of a non-finite loss of ``run`` in (0-based) ``epoch`` under config ``c``."""
  optim = ec.optim_config(c)
  lr = optim.lr_values[bisect.bisect_right(optim.lr_boundaries, epoch)]
  causes = [f'the learning rate {lr:g} of this epoch (lower --config.optim.lr_values)']
  if math.isinf(optim.clip):
    causes.append('no gradient clipping (set a finite --config.optim.clip, e.g. 12)')
  small = [t for t in run['taus'] if t < SMALL_TAU]
  if small:
    causes.append(f'small time constants {small} (1/tau near 1; try larger --tau1/--tau2)')
  causes.append(
    f'the data of {c.dataset} (check it: python -m mstrnn_jax.data.describe --dataset={c.dataset})'
  )
  return causes


def _progress(total, initial, desc, enabled):
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

  return tqdm(
    total=total,
    initial=initial,
    desc=desc,
    unit='epoch',
    disable=not (enabled and is_writer()),
    file=sys.stderr,
    dynamic_ncols=True,
  )
