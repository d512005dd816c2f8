"""Orbax checkpoints of the stacked run state, resume, and :func:`load_run` for analysis.

Layout of a workdir (written by :mod:`mstrnn_jax.launch`)::

  <workdir>/experiment.json        the experiment record (see workdir.experiment_record)
  <workdir>/checkpoints/<model>/<epoch>/
      state/   the stacked TrainState of every run (orbax StandardSave; leading run axis,
               padded to a multiple of the device count)
      population/  the 'population' BN statistics evaluated at this epoch (same run axis),
               when that mode was evaluated (train.EvalFlags.population)
      meta/    JSON: {'epoch': completed epochs, 'history': per-run per-epoch metrics so far,
               'population': true when population/ is there}

A checkpoint directory appears only once it is complete (orbax writes to a temporary name and
renames), so a process killed while saving leaves the previous checkpoint as the latest one.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mstrnn_jax import parallel


POPULATION = 'population'  # the checkpoint item (and meta flag) of the population statistics


class CheckpointError(RuntimeError):
  """A checkpoint cannot be read; the message is one line naming its folder."""


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0][:160]}' if text else type(e).__name__


def _runs(tree: Any) -> int:
  """Length of the leading (run) axis of a stacked state (or its shape structs)."""
  return int(jax.tree.leaves(tree)[0].shape[0])


def _repad(states: Any, target: Any) -> Any:
  """Host ``states`` whose run axis was padded for another device count -> ``target``'s padded
  run count and shardings. The real runs come first and padding rows are copies of run 0
  (:func:`parallel.pad_runs`), so cutting or padding keeps every real run as saved."""
  n = _runs(target)
  states = parallel.pad_runs(jax.tree.map(lambda x: np.asarray(x)[:n], states), n)

  def place(x, t):
    sharding = getattr(t, 'sharding', None)
    return x if sharding is None else parallel.put(x, sharding)

  return jax.tree.map(place, states, target)


def _host_zeros(arrays: Any) -> Any:
  """Zero numpy arrays of the shapes and dtypes in a tree of orbax array metadata: a restore
  target that reads on the host a checkpoint saved on any number of devices (orbax refuses a
  restore without a target when the saving process had another device topology)."""
  return jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), arrays)


class Checkpointer:
  """Saves / restores the stacked state of one model's runs under ``directory``.

  A checkpoint that cannot be read (a truncated or missing file) is moved aside to
  ``<directory>.damaged/<epoch>`` by :meth:`restore_newest`, never deleted.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    self.directory = os.path.abspath(directory)
    self._mngr = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
      ),
    )

  def epochs(self) -> list[int]:
    """Completed epochs of every complete checkpoint, oldest first."""
    return sorted(self._mngr.all_steps())

  def latest_epoch(self) -> int | None:
    """Completed epochs of the newest complete checkpoint, or None."""
    return self._mngr.latest_step()

  def save(self, epoch: int, states: Any, meta: dict, population: Any = None) -> None:
    """Saves the stacked states (jax arrays, any sharding), JSON ``meta`` and, when given,
    the evaluated ``population`` statistics at ``epoch``."""
    items = {'state': ocp.args.StandardSave(states)}
    if population is not None:
      items[POPULATION] = ocp.args.StandardSave(population)
      meta = {**meta, POPULATION: True}
    self._mngr.save(
      epoch, args=ocp.args.Composite(meta=ocp.args.JsonSave(meta), **items), force=True
    )
    self._mngr.wait_until_finished()

  def restore_population(self, epoch: int, meta: dict | None = None) -> Any:
    """The ``population`` statistics saved at ``epoch`` (numpy leaves, padded run axis), or
    None when that checkpoint has none (population statistics not evaluated, or written by a
    version before they were kept). ``meta``: that epoch's meta when already read."""
    if not (self._restore_meta(epoch) if meta is None else meta).get(POPULATION):
      return None
    path = os.path.join(self.directory, str(epoch), POPULATION)
    try:
      template = _host_zeros(self._stored_arrays(epoch, POPULATION))
      out = self._mngr.restore(
        epoch, args=ocp.args.Composite(**{POPULATION: ocp.args.StandardRestore(template)})
      )
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'{path}: unreadable population statistics ({_first_line(e)}).') from e
    return out[POPULATION]

  def restore(self, epoch: int, target: Any = None) -> tuple[Any, dict]:
    """Restores ``(states, meta)`` of ``epoch``.

    Args:
      epoch: a value of :meth:`epochs`.
      target: a pytree of ``jax.ShapeDtypeStruct`` with shardings (e.g. ``jax.eval_shape`` of
        the init program) or concrete arrays; None -> nested dicts of numpy arrays. A state
        saved with its run axis padded for another device count (a run resumed on more or
        fewer devices) is cut or padded to the target's run count, every real run as saved.

    Raises:
      CheckpointError: (one line, naming the folder) when ``epoch`` is missing or unreadable.
    """
    path = os.path.join(self.directory, str(epoch))
    if epoch not in self.epochs():
      raise CheckpointError(
        f'{path}: no such checkpoint; {self.directory} holds epochs {self.epochs()}.'
      )
    meta = self._restore_meta(epoch)
    try:
      stored = self._stored_arrays(epoch, 'state')
      repad = target is not None and _runs(stored) != _runs(target)
      if target is None:  # on the host, whatever device count saved it
        template = _host_zeros(stored)
      elif repad:  # saved for another device count: read on the host at the stored size
        template = jax.tree.map(lambda t: np.zeros((_runs(stored), *t.shape[1:]), t.dtype), target)
      else:
        template = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
      out = self._mngr.restore(
        epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(template))
      )
    except Exception as e:  # pylint: disable=broad-except  (orbax/tensorstore raise many kinds)
      # Known noise, harmless: orbax 0.12.8 (asyncio_utils._run_sync_via_new_loop) closes its
      # event loop as soon as the first array read fails, without cancelling the other reads;
      # when they finish, tensorstore's callbacks may hit the closed loop and Python prints
      # "Exception ignored ... RuntimeError: Event loop is closed" on stderr, and asyncio may log
      # "Task (or Future) exception was never retrieved" with a traceback when a failed read is
      # collected (both seen under load, in CI). cli.quiet_logs drops both in the launchers, so
      # analyze.py's fallback past a damaged checkpoint prints one line (tests/test_faults.py).
      raise CheckpointError(f'{path}: unreadable checkpoint ({_first_line(e)}).') from e
    return (_repad(out.state, target) if repad else out.state), meta

  def _stored_arrays(self, epoch: int, item: str) -> Any:
    """The tree of orbax array metadata (``.shape``, ``.dtype``) of ``item`` at ``epoch``; its
    run axis is the run count padded to the device count of the process that saved it."""
    path = pathlib.Path(self.directory, str(epoch), item)
    return ocp.StandardCheckpointHandler().metadata(path).tree

  def _restore_meta(self, epoch: int) -> dict:
    """The JSON ``meta`` of ``epoch``; CheckpointError naming its file when unreadable or not
    ``{'epoch': epoch, 'history': {...}}``."""
    path = os.path.join(self.directory, str(epoch), 'meta', 'metadata')
    try:
      meta = self._mngr.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'{path}: unreadable checkpoint metadata ({_first_line(e)}).') from e
    if not (
      isinstance(meta, dict)
      and meta.get('epoch') == epoch
      and isinstance(meta.get('history', {}), dict)
    ):
      raise CheckpointError(
        f'{path}: invalid checkpoint metadata (expected a JSON object '
        f'{{"epoch": {epoch}, "history": {{...}}}}).'
      )
    return meta

  def restore_newest(
    self, target: Any = None, *, move_aside: bool = False, warn=None
  ) -> tuple[int, Any, dict] | None:
    """``(epoch, states, meta)`` of the newest readable checkpoint, or None if there is none.

    Each unreadable newer checkpoint is reported through ``warn`` (one line; default: a
    ``warning:`` line on stderr) and, with ``move_aside`` (resuming: training will save that
    epoch again), moved to ``<directory>.damaged/<epoch>``.

    Raises:
      CheckpointError: when checkpoints exist but none of them is readable.
    """
    warn = warn or (lambda msg: print(f'warning: {msg}', file=sys.stderr))
    damaged = []
    for epoch in reversed(self.epochs()):
      try:
        states, meta = self.restore(epoch, target)
      except CheckpointError as e:
        damaged.append(epoch)
        moved = f' Moved it to {self._move_aside(epoch)};' if move_aside else ''
        warn(f'{e}{moved} falling back to an older checkpoint.')
        continue
      return epoch, states, meta
    if damaged:
      raise CheckpointError(
        f'{self.directory}: no readable checkpoint (damaged: epochs '
        f'{sorted(damaged)}); start again in a new --workdir.'
      )
    return None

  def _move_aside(self, epoch: int) -> str:
    dest_dir = f'{self.directory}.damaged'
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, str(epoch))
    n = 1
    while os.path.exists(dest):
      dest, n = os.path.join(dest_dir, f'{epoch}.{n}'), n + 1
    os.replace(os.path.join(self.directory, str(epoch)), dest)
    self._mngr.reload()
    return dest

  def close(self) -> None:
    self._mngr.close()


def _restore_epoch(ckpt: Checkpointer, epoch: int) -> tuple[Any, dict]:
  """``(state, meta)`` of an explicitly asked ``epoch``; CheckpointError naming the readable
  epochs."""
  try:
    return ckpt.restore(epoch)
  except CheckpointError as e:
    readable = []
    for other in ckpt.epochs():
      if other != epoch:
        try:
          ckpt.restore(other)
          readable.append(other)
        except CheckpointError:
          pass
    hint = (
      f'readable epochs: {readable}; pass --epoch={readable[-1]} or leave --epoch out'
      if readable
      else 'no other readable checkpoint'
    )
    raise CheckpointError(f'{e} {hint}.') from None


@dataclasses.dataclass
class LoadedRun:
  """Everything needed to rebuild and run the trained models of a workdir.

  model_cfg:      the ``configs.ModelConfig`` the runs were trained with.
  dataset:        dataset name; dataset_kwargs: keyword arguments of ``pipeline.load_dataset``.
  params:         pytree, every leaf with a leading run axis [R, ...] (padding runs dropped).
  batch_stats:    pytree, same: the BN statistics to evaluate with, those of the reported
                  accuracies (``stats_mode``): the checkpoint's population statistics when
                  ``eval_stats`` reported 'population' and the checkpoint kept them, otherwise
                  the stored running averages.
  running_stats:  pytree, same: the running averages of training.
  stats_mode:     'population' or 'running': what ``batch_stats`` holds.
  runs:           list of {'run': r, 'test_subject': s, 'subject_name': name, 'taus': [...]}
                  for r in 0..R-1 (taus [] for LRCN).
  epoch:          completed epochs of the restored checkpoint.
  experiment:     the full experiment record (experiment.json).
  """

  model_cfg: Any
  dataset: str
  dataset_kwargs: dict
  params: Any
  batch_stats: Any
  runs: list
  epoch: int
  experiment: dict
  running_stats: Any = None
  stats_mode: str = 'running'


def load_run(workdir: str, model: str | None = None, epoch: int | None = None) -> LoadedRun:
  """Loads the latest (or ``epoch``) checkpoint of ``model`` (default: the only / first model)
  from a workdir written by ``experiments/run.py`` or ``experiments/sweep.py``.

  Use with ``models.apply(loaded.model_cfg, jax.tree.map(lambda x: x[r], loaded.params), ...)``
  for run ``r`` (``loaded.runs[r]`` names its held-out subject and taus).
  """
  from mstrnn_jax import model_records, workdir as workdirs  # pylint: disable=import-outside-toplevel

  record = workdirs.read_record(workdir)
  model = workdirs.record_model(record, workdir, model)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints', model))
  try:
    if epoch is None:
      newest = ckpt.restore_newest()
      if newest is None:
        raise FileNotFoundError(
          f'{workdir}/checkpoints/{model} holds no checkpoint yet '
          '(checkpoints are written every --checkpoint_every epochs).'
        )
      epoch, state, meta = newest
    else:
      state, meta = _restore_epoch(ckpt, epoch)
    population = ckpt.restore_population(epoch, meta)
  finally:
    ckpt.close()
  runs = record['runs_by_model'][model]
  n = len(runs)
  cut = lambda x: x[:n]  # noqa: E731  (drop the padding runs)
  running = jax.tree.map(cut, state['batch_stats'])
  reported = record['experiment'].get('eval_stats', ['running'])[0]
  use_population = population is not None and reported == POPULATION
  return LoadedRun(
    model_cfg=model_records.model_config_from_record(record['models'][model]),
    dataset=record['dataset'],
    dataset_kwargs=record['dataset_kwargs'],
    params=jax.tree.map(cut, state['params']),
    batch_stats=jax.tree.map(cut, population) if use_population else running,
    runs=runs,
    epoch=int(epoch),
    experiment=record,
    running_stats=running,
    stats_mode=POPULATION if use_population else 'running',
  )
