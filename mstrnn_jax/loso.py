"""The LOSO / sweep driver: one stacked program per model family, epochs loop, results files.

Every (tau pair, held-out subject) is a *run*; all runs of a model train together in the
programs of :mod:`mstrnn_jax.train` (vmapped over runs, sharded over devices by
:mod:`mstrnn_jax.parallel`).  After every epoch each run's held-out subject is evaluated; the
history is written atomically to the workdir, checkpoints go out every ``checkpoint_every``
epochs and at the end, and ``resume=True`` continues from the newest checkpoint (the same final
numbers as an uninterrupted run on the same machine).

Workdir files::

  experiment.json        experiment, dataset summary, model records, the run table
  results.json           per model: per-run per-epoch metrics, selected epochs, summaries; tables
  results.md             the tables (Tables III-V layout; Table VI layout for sweeps)
  metrics.csv            model, run, test_subject, tau1, tau2, epoch, train_loss, accuracies
  events/<model>/events.out.tfevents.*   the same scalars for TensorBoard (written without TF)
  curves_<model>.png     test joint accuracy per fold over epochs (+ mean)
  heatmap_<head>.png     (sweeps) mean accuracy per (tau1, tau2)
  checkpoints/<model>/<epoch>/   orbax (see mstrnn_jax.checkpoint)
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import struct
import sys
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax import checkpoint, evaluate, parallel, presets, train


class NonFiniteLossError(RuntimeError):
  """Raised when a run's training loss stops being finite."""


@dataclasses.dataclass
class Plan:
  """What will run: the loaded dataset, the runs, and one model record per model family."""
  exp: presets.Experiment
  models: tuple[str, ...]
  dataset: Any
  folds: list
  tau_pairs: tuple[tuple[float, ...], ...] | None
  model_records: dict


# --------------------------------------------------------------------------------------------
# Planning and validation (everything here runs before any compilation)
# --------------------------------------------------------------------------------------------
def validate(exp: presets.Experiment, models: Sequence[str]) -> None:
  """Checks the experiment without loading data; raises ValueError naming the bad setting."""
  if exp.dataset not in presets.DATASETS:
    raise ValueError(f'Unknown dataset {exp.dataset!r}; choose one of {presets.DATASETS}.')
  for m in models:
    if m not in presets.MODELS:
      raise ValueError(f'Unknown model {m!r}; choose one of {presets.MODELS} or all.')
  if exp.taus is not None:
    for pair in exp.taus:
      if any(t <= 0 for t in pair):
        raise ValueError(f'Time constants must be > 0, got tau pair {pair}.')
  for name, v in (('epochs', exp.epochs), ('batch_size', exp.batch_size),
                  ('voting_steps', exp.voting_steps), ('eval_batch_size', exp.eval_batch_size),
                  ('checkpoint_every', exp.checkpoint_every)):
    if v < 1:
      raise ValueError(f'{name} must be >= 1, got {v}.')
  if exp.vote_rule not in evaluate.VOTE_RULES:
    raise ValueError(f'vote_rule must be one of {evaluate.VOTE_RULES}, got {exp.vote_rule!r}.')


def plan(exp: presets.Experiment, models: Sequence[str], data_dir: str | None = None) -> Plan:
  """Validates, loads the dataset, builds the fold list and model records."""
  from mstrnn_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  validate(exp, models)
  ds = pipeline.load_dataset(exp.dataset, data_dir=data_dir, **dict(exp.dataset_kwargs))
  folds = pipeline.loso_folds(ds)
  if exp.subjects is not None:
    known = {int(f.test_subject) for f in folds}
    bad = sorted(set(exp.subjects) - known)
    if bad:
      raise ValueError(f'--subjects {bad} not in {exp.dataset} (subjects 0..{len(folds) - 1}).')
    folds = [f for f in folds if int(f.test_subject) in set(exp.subjects)]
  min_train = min(len(f.train_idx) for f in folds)
  if exp.batch_size > min_train:
    raise ValueError(f'batch_size {exp.batch_size} is larger than the smallest training set '
                     f'({min_train} videos) of {exp.dataset}; use --batch_size<={min_train}.')
  t_max = ds.videos.shape[1]
  if exp.voting_steps > t_max:
    raise ValueError(f'voting_steps {exp.voting_steps} exceeds the video length {t_max}.')
  records = {m: presets.model_record(exp, m, ds.crop_size, ds.heads, t_max) for m in models}
  for m, rec in records.items():
    n_taus = len(presets.model_config_from_record(rec).taus)
    if exp.taus is not None and n_taus and any(len(p) != n_taus for p in exp.taus):
      raise ValueError(f'{m} has {n_taus} time constants; got tau tuples {exp.taus}.')
  return Plan(exp=exp, models=tuple(models), dataset=ds, folds=folds, tau_pairs=exp.taus,
              model_records=records)


def run_table(p: Plan, model: str) -> list[dict]:
  """The runs of ``model``: tau pairs (outer) x folds (inner)."""
  cfg = presets.model_config_from_record(p.model_records[model])
  if not cfg.taus:
    pairs = [()]
  else:
    pairs = [tuple(float(t) for t in cfg.taus)] if p.tau_pairs is None else list(p.tau_pairs)
  names = p.dataset.subject_names
  return [{'run': i, 'test_subject': int(f.test_subject),
           'subject_name': str(names[int(f.test_subject)]), 'taus': [float(t) for t in pair]}
          for i, (pair, f) in enumerate(itertools.product(pairs, p.folds))]


def build_tables(p: Plan, runs: list[dict]) -> train.RunTables:
  """Numpy run tables (unpadded) for ``runs``."""
  by_subject = {int(f.test_subject): f for f in p.folds}
  folds = [by_subject[r['test_subject']] for r in runs]
  n_tr = max(len(f.train_idx) for f in folds)
  n_te = max(len(f.test_idx) for f in folds)
  pad = lambda a, n: np.pad(np.asarray(a, np.int32), (0, n - len(a)))  # noqa: E731
  return train.RunTables(
      train_idx=np.stack([pad(f.train_idx, n_tr) for f in folds]),
      n_train=np.asarray([len(f.train_idx) for f in folds], np.int32),
      test_idx=np.stack([pad(f.test_idx, n_te) for f in folds]),
      test_mask=np.stack([np.arange(n_te) < len(f.test_idx) for f in folds]),
      taus=np.asarray([r['taus'] for r in runs], np.float32).reshape(len(runs), -1))


def experiment_record(p: Plan, runs_by_model: dict) -> dict:
  ds = p.dataset
  return {'experiment': p.exp.to_dict(), 'dataset': p.exp.dataset,
          'dataset_kwargs': dict(p.exp.dataset_kwargs),
          'dataset_summary': {'videos': list(ds.videos.shape), 'heads': [list(h) for h in ds.heads],
                              'subjects': list(map(str, ds.subject_names)),
                              'crop_size': int(ds.crop_size)},
          'models': p.model_records,
          'runs': runs_by_model[p.models[0]], 'runs_by_model': runs_by_model}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def write_atomic(path: str, text: str | bytes) -> None:
  """Writes ``path`` via a temporary file and ``os.replace`` (never a half-written file)."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb' if isinstance(text, bytes) else 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _crc32c_table():
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), as used by TFRecord framing."""
  c = 0xFFFFFFFF
  for b in data:
    c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
  return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  c = crc32c(data)
  return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    out.append(b | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
  return _varint((num << 3) | wire) + payload


def _len_field(num: int, payload: bytes) -> bytes:
  return _field(num, 2, _varint(len(payload)) + payload)


class ScalarEventWriter:
  """Minimal TensorBoard event-file writer for scalars (no TensorFlow needed).

  Writes TFRecord-framed ``Event`` protos (``wall_time``=1, ``step``=2, ``file_version``=3,
  ``summary``=5 with ``Summary.Value{tag=1, simple_value=2}``), which TensorBoard reads.
  """

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    self.path = os.path.join(logdir, f'events.out.tfevents.{int(time.time())}.{os.getpid()}')
    self._f = open(self.path, 'ab')
    self._write(_field(1, 1, struct.pack('<d', time.time())) +
                _len_field(3, b'brain.Event:2'))

  def _write(self, event: bytes) -> None:
    header = struct.pack('<Q', len(event))
    self._f.write(header + struct.pack('<I', _masked_crc(header)) + event +
                  struct.pack('<I', _masked_crc(event)))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    summary = b''.join(_len_field(1, _len_field(1, tag.encode()) +
                                  _field(2, 5, struct.pack('<f', float(v))))
                       for tag, v in values.items())
    self._write(_field(1, 1, struct.pack('<d', time.time())) + _field(2, 0, _varint(step)) +
                _len_field(5, summary))
    self._f.flush()

  def close(self) -> None:
    self._f.close()


# --------------------------------------------------------------------------------------------
# Training one model family
# --------------------------------------------------------------------------------------------
def _history_lists(h: dict) -> dict:
  return {k: np.asarray(v).tolist() for k, v in h.items()}


class Setup(NamedTuple):
  """The compiled-once programs of one model and their device arguments."""
  programs: train.Programs
  runs: list
  videos: jax.Array       # uint8 [N, T, H, W, 3], replicated
  labels: jax.Array       # int32 [N, n_heads], replicated
  tables: train.RunTables  # leading axis R padded to the device count, sharded
  keys: jax.Array         # uint32 [R_padded, 2], sharded
  test_mask: np.ndarray   # bool [R, n_test_max] (unpadded, host)
  shard: Any              # the run-axis sharding


def setup(p: Plan, model: str, mesh=None, runs: list | None = None,
          run_chunk: int | None | str = 'auto') -> Setup:
  """Builds the programs of ``model`` and puts the dataset and run tables on the devices.

  ``runs`` defaults to :func:`run_table`; per-run keys derive from the seed and the run's
  position in that table.
  """
  exp = p.exp
  ds = p.dataset
  cfg = presets.model_config_from_record(p.model_records[model])
  runs = run_table(p, model) if runs is None else runs
  n_runs = len(runs)
  mesh = parallel.make_mesh() if mesh is None else mesh
  n_pad = parallel.padded_size(n_runs, mesh)
  shard, repl = parallel.run_sharding(mesh), parallel.replicated(mesh)
  steps = min(len(f.train_idx) for f in p.folds) // exp.batch_size
  programs = train.make_programs(
      train.model_fns(cfg), exp.optim, batch_size=exp.batch_size, steps_per_epoch=steps,
      voting_steps=exp.voting_steps, vote_rule=exp.vote_rule,
      eval_batch_size=exp.eval_batch_size, mesh=mesh, run_chunk=run_chunk)
  tables_np = build_tables(p, runs)
  keys = np.stack([np.asarray(jax.random.key_data(jax.random.fold_in(
      jax.random.key(exp.seed), r['run']))) for r in runs])
  return Setup(programs=programs, runs=runs,
               videos=parallel.put(ds.videos, repl),
               labels=parallel.put(train.stack_labels(ds.labels, ds.heads), repl),
               tables=parallel.put(parallel.pad_runs(tables_np, n_pad), shard),
               keys=parallel.put(parallel.pad_runs(keys, n_pad), shard),
               test_mask=tables_np.test_mask, shard=shard)


def train_model(p: Plan, model: str, workdir: str, *, resume: bool, mesh=None,
                progress: bool = True, on_epoch: Callable[[dict], None] | None = None) -> dict:
  """Trains every run of ``model`` for ``p.exp.epochs`` epochs; returns its history.

  ``on_epoch(result_so_far)`` is called after every epoch (and its checkpoint) with the same
  structure as the return value.

  Returns:
    {'runs': run table, 'history': {'train_loss': [R][E], 'train_acc': [R][E][H+1],
     'test_acc': [R][E][H+1]}, 'epochs_done': E, 'seconds': wall time of this call}
  """
  exp = p.exp
  ds = p.dataset
  e = setup(p, model, mesh)
  programs, runs, n_runs, shard = e.programs, e.runs, len(e.runs), e.shard
  videos, labels, tables, keys, test_mask = e.videos, e.labels, e.tables, e.keys, e.test_mask

  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints', model))
  history = {'train_loss': [], 'train_acc': [], 'test_acc': []}
  start = 0
  latest = ckpt.latest_epoch() if resume else None
  if latest is not None:
    target = jax.eval_shape(programs.init, keys)
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=shard),
                          target)
    states, meta = ckpt.restore(latest, target)
    history = {k: list(np.asarray(v).swapaxes(0, 1)) for k, v in meta['history'].items()}
    start = int(meta['epoch'])
  else:
    states = programs.init(keys)

  events = ScalarEventWriter(os.path.join(workdir, 'events', model)) if _writer() else None
  t0 = time.time()
  bar = _progress(total=exp.epochs, initial=start, desc=f'{model} ({n_runs} runs)',
                  enabled=progress)
  try:
    for epoch in range(start, exp.epochs):
      states, m = programs.train_epoch(states, videos, labels, tables)
      flags = programs.evaluate(states, videos, labels, tables)
      m, flags = parallel.to_host((m, flags))
      loss = m.loss[:n_runs]
      if not np.all(np.isfinite(loss)):
        r, s = np.argwhere(~np.isfinite(loss))[0]
        run = runs[r]
        raise NonFiniteLossError(
            f'{model}: non-finite training loss in run {r} (held-out subject '
            f'{run["subject_name"]}, taus {run["taus"]}) at epoch {epoch + 1}, step {s + 1}; '
            f'stopped. Results up to epoch {epoch} and the last checkpoint stay in {workdir}. '
            'Lower the learning rate (--preset / OptimConfig) or check the data.')
      counts = m.count[:n_runs].sum(axis=1)
      train_acc = 100.0 * m.correct[:n_runs].sum(axis=1) / counts[:, None]
      test_acc = evaluate.accuracies(flags[:n_runs], test_mask)
      history['train_loss'].append(loss.mean(axis=1))
      history['train_acc'].append(train_acc)
      history['test_acc'].append(test_acc)
      done = epoch + 1
      if events is not None:
        _log_events(events, done, runs, history, ds.heads)
      result = _result(runs, history, time.time() - t0)
      if done % exp.checkpoint_every == 0 or done == exp.epochs:
        ckpt.save(done, states, {'epoch': done, 'history': _history_lists(result['history'])})
      if on_epoch is not None:
        on_epoch(result)
      bar.update(1)
      bar.set_postfix(loss=f'{loss.mean():.3f}', train_acc=f'{train_acc[:, -1].mean():.1f}',
                      test_acc=f'{test_acc[:, -1].mean():.1f}')
  finally:
    bar.close()
    if events is not None:
      events.close()
    ckpt.close()
  return _result(runs, history, time.time() - t0)


def _result(runs: list[dict], history: dict, seconds: float) -> dict:
  """history: name -> list over epochs of [R, ...] -> arrays [R, epochs, ...]."""
  return {'runs': runs, 'epochs_done': len(history['train_loss']), 'seconds': seconds,
          'history': {k: np.stack(v, axis=1) if v else np.zeros((len(runs), 0))
                      for k, v in history.items()}}


def _writer() -> bool:
  """Only process 0 writes result files (every process takes part in checkpoints)."""
  return jax.process_index() == 0


def _progress(total, initial, desc, enabled):
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=total, initial=initial, desc=desc, unit='epoch',
              disable=not (enabled and _writer()),
              file=sys.stderr, dynamic_ncols=True)


def _log_events(events: ScalarEventWriter, epoch: int, runs: list[dict], history: dict,
                heads) -> None:
  cats = [h for h, _ in heads] + [evaluate.JOINT]
  values = {}
  for r, run in enumerate(runs):
    tag = f'subject{run["test_subject"]}' + ''.join(f'_tau{t:g}' for t in run['taus'])
    values[f'{tag}/train_loss'] = history['train_loss'][-1][r]
    for c, cat in enumerate(cats):
      values[f'{tag}/test_acc_{cat}'] = history['test_acc'][-1][r, c]
      values[f'{tag}/train_acc_{cat}'] = history['train_acc'][-1][r, c]
  values['mean/test_acc_joint'] = float(np.mean(history['test_acc'][-1][:, -1]))
  values['mean/train_loss'] = float(np.mean(history['train_loss'][-1]))
  events.scalars(epoch, values)


# --------------------------------------------------------------------------------------------
# Summaries and the whole experiment
# --------------------------------------------------------------------------------------------
def summarize_model(result: dict, heads) -> dict:
  """Per tau pair: :func:`evaluate.summarize_group` over its folds.  Keys 'tau1,tau2' ('' for
  models without taus)."""
  runs = result['runs']
  test_acc = result['history']['test_acc']
  groups: dict[str, list[int]] = {}
  for r in runs:
    groups.setdefault(_tau_key(r['taus']), []).append(r['run'])
  return {k: evaluate.summarize_group(test_acc[idx], [h for h, _ in heads])
          for k, idx in groups.items()}


def _tau_key(taus: Sequence[float]) -> str:
  return ','.join(f'{t:g}' for t in taus)


def write_results(workdir: str, p: Plan, results: dict, final: bool) -> dict:
  """Writes results.json, results.md and metrics.csv atomically; returns the results dict."""
  heads = p.dataset.heads
  out = {'experiment': p.exp.to_dict(), 'final': final, 'models': {}, 'tables': {}}
  for model, res in results.items():
    entry = {'runs': res['runs'], 'epochs_done': res['epochs_done'],
             'seconds': round(res['seconds'], 2), 'history': _history_lists(res['history'])}
    if res['epochs_done']:
      entry['summary'] = summarize_model(res, heads)
    out['models'][model] = entry
  md = [f'# {p.exp.dataset}: LOSO results ({p.exp.preset} preset'
        f'{", final" if final else ", in progress"})', '']
  trained = {m: e for m, e in out['models'].items() if 'summary' in e}
  if trained:
    is_sweep = p.tau_pairs is not None and len(p.tau_pairs) > 1
    if is_sweep:
      for m, e in trained.items():
        if len(e['summary']) > 1:
          t1s = sorted({pair[0] for pair in p.tau_pairs})
          t2s = sorted({pair[1] for pair in p.tau_pairs})
          sums = {tuple(float(x) for x in k.split(',')): v for k, v in e['summary'].items()}
          table = evaluate.sweep_table(sums, t1s, t2s, heads)
          out['tables'][f'{m}_sweep'] = table
          md += [f'## {m.upper()}: sensitivity to the time constants (Table VI layout)', '',
                 table]
    first = {m: next(iter(e['summary'].values())) for m, e in trained.items()}
    table = evaluate.model_table(first, heads)
    out['tables']['models'] = table
    md += ['## Accuracy in percent, mean ± standard error over folds (Tables III-V layout)', '',
           table]
    for m, e in trained.items():
      for k, s in e['summary'].items():
        md.append(f'- {m}{" taus " + k if k else ""}: selected epochs per fold '
                  f'{s["best_epoch"]} (of {e["epochs_done"]})')
  write_atomic(os.path.join(workdir, 'results.json'), json.dumps(out, indent=1))
  write_atomic(os.path.join(workdir, 'results.md'), '\n'.join(md) + '\n')
  write_atomic(os.path.join(workdir, 'metrics.csv'), _metrics_csv(results, heads))
  return out


def _metrics_csv(results: dict, heads) -> str:
  cats = [h for h, _ in heads] + [evaluate.JOINT]
  cols = ['model', 'run', 'test_subject', 'taus', 'epoch', 'train_loss'] + \
         [f'train_acc_{c}' for c in cats] + [f'test_acc_{c}' for c in cats]
  lines = [','.join(cols)]
  for model, res in results.items():
    h = res['history']
    for run in res['runs']:
      r = run['run']
      for e in range(res['epochs_done']):
        row = [model, r, run['test_subject'], _tau_key(run['taus']).replace(',', ' '), e + 1,
               f'{h["train_loss"][r, e]:.6g}']
        row += [f'{x:.4f}' for x in h['train_acc'][r, e]]
        row += [f'{x:.4f}' for x in h['test_acc'][r, e]]
        lines.append(','.join(map(str, row)))
  return '\n'.join(lines) + '\n'


def prepare_workdir(workdir: str, p: Plan, resume: bool) -> None:
  """Creates the workdir and its experiment.json; on resume checks it describes ``p``."""
  runs_by_model = {m: run_table(p, m) for m in p.models}
  record = experiment_record(p, runs_by_model)
  path = os.path.join(workdir, 'experiment.json')
  if not _writer():
    return
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if not resume:
      raise FileExistsError(f'{workdir} already holds an experiment; pass --resume to continue '
                            'it or choose another --workdir.')
    if old['experiment'] != json.loads(json.dumps(record['experiment'])):
      raise ValueError(f'--resume: {path} describes a different experiment '
                       f'({old["experiment"]}); use the same flags or another --workdir.')
    return
  os.makedirs(workdir, exist_ok=True)
  write_atomic(path, json.dumps(record, indent=1))


def run_experiment(p: Plan, workdir: str, *, resume: bool = False, mesh=None,
                   progress: bool = True, log: Callable[[str], None] = print) -> dict:
  """Trains every model of ``p`` over all its runs, writes every result file, returns the
  results dict (as in results.json)."""
  from mstrnn_jax import plots  # pylint: disable=import-outside-toplevel
  prepare_workdir(workdir, p, resume)
  results: dict = {}
  for model in p.models:
    def on_epoch(res, model=model):
      if _writer():
        write_results(workdir, p, {**results, model: res}, final=False)
    results[model] = train_model(p, model, workdir, resume=resume, mesh=mesh,
                                 progress=progress, on_epoch=on_epoch)
  if not _writer():
    return {}
  out = write_results(workdir, p, results, final=True)
  plots.write_figures(workdir, out, p.dataset.heads, p.tau_pairs)
  with open(os.path.join(workdir, 'results.md')) as f:
    log(f.read())
  return out


# --------------------------------------------------------------------------------------------
# Launcher entry points (experiments/run.py and experiments/sweep.py are thin flag parsers)
# --------------------------------------------------------------------------------------------
def make_experiment(dataset: str, preset: str | None = None, *, model: str = 'mstrnn',
                    tau_pairs: Sequence[Sequence[float]] | None = None, **overrides
                    ) -> tuple[presets.Experiment, tuple[str, ...]]:
  """The preset experiment with flag overrides; returns ``(experiment, models)``.

  Args:
    dataset: a name of ``presets.DATASETS``.
    preset: 'paper' | 'quick' | 'tiny'; None -> 'quick' for synthetic datasets, else 'paper'.
    model: 'mstrnn' | 'mstnn' | 'lrcn' | 'all'.
    tau_pairs: (tau1, tau2) pairs; None -> each model's default taus.
    **overrides: Experiment fields (``epochs``, ``batch_size``, ``subjects``, ``seed``,
      ``checkpoint_every``, ``vote_rule``, ``voting_steps``, ...); None values are ignored.
  """
  if dataset not in presets.DATASETS:
    raise ValueError(f'Unknown dataset {dataset!r}; choose one of {presets.DATASETS}.')
  if preset is None:
    preset = 'quick' if dataset in presets.SYNTHETIC_DATASETS else 'paper'
  exp = presets.get_experiment(dataset, preset)
  models = presets.MODELS if model == 'all' else (model,)
  changes = {k: v for k, v in overrides.items() if v is not None}
  if 'subjects' in changes:
    changes['subjects'] = tuple(int(s) for s in changes['subjects'])
  if tau_pairs is not None:
    changes['taus'] = tuple(tuple(float(t) for t in pair) for pair in tau_pairs)
  exp = dataclasses.replace(exp, **changes)
  validate(exp, models)
  return exp, tuple(models)


def default_workdir(exp: presets.Experiment, models: Sequence[str], kind: str = 'run') -> str:
  """runs/<dataset>-<model or all>[-sweep]-<UTC timestamp>."""
  name = models[0] if len(models) == 1 else 'all'
  stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
  return os.path.join('runs', f'{exp.dataset}-{name}{"-sweep" if kind == "sweep" else ""}-{stamp}')


def describe(p: Plan, mesh=None) -> str:
  """Dry-run summary: dataset, runs, per model the parameter count and the cost of one train
  step of one run (XLA cost analysis of the lowered step; nothing is compiled or trained)."""
  ds, exp = p.dataset, p.exp
  steps = min(len(f.train_idx) for f in p.folds) // exp.batch_size
  lines = [f'Dataset {exp.dataset}: videos {tuple(ds.videos.shape)} uint8 '
           f'({ds.videos.nbytes / 2 ** 20:.1f} MiB), crop {ds.crop_size}, heads {ds.heads}, '
           f'{len(ds.subject_names)} subjects; folds run: {[int(f.test_subject) for f in p.folds]}',
           f'Experiment ({exp.preset}): {exp.epochs} epochs x {steps} steps of batch '
           f'{exp.batch_size}, voting steps {exp.voting_steps} ({exp.vote_rule}), LR '
           f'{exp.optim.lr_values} at epoch boundaries {exp.optim.lr_boundaries}, weight decay '
           f'{exp.optim.weight_decay}, clip {exp.optim.clip}, devices {jax.device_count()}']
  for model in p.models:
    cfg = presets.model_config_from_record(p.model_records[model])
    fns = train.model_fns(cfg)
    runs = run_table(p, model)
    shapes = jax.eval_shape(fns.init, jax.random.key(0))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))
    tx = train.make_optimizer(exp.optim, steps)
    state = jax.eval_shape(lambda k: train.create_train_state(fns, tx, k),
                           jax.ShapeDtypeStruct((2,), jnp.uint32))
    t_max, (h, w) = ds.videos.shape[1], ds.videos.shape[2:4]
    step = jax.jit(lambda st, v, l, t, k: train.train_step(fns, tx, exp.voting_steps,
                                                           exp.vote_rule, st, v, l, t, k))
    lowered = step.lower(state, jax.ShapeDtypeStruct((exp.batch_size, t_max, h, w, 3), jnp.uint8),
                         jax.ShapeDtypeStruct((exp.batch_size, len(ds.heads)), jnp.int32),
                         jax.ShapeDtypeStruct((fns.n_taus,), jnp.float32), jax.random.key(0))
    cost = lowered.cost_analysis() or {}
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get('flops', float('nan')))
    lines.append(f'{model.upper()}: {n_params:,} parameters; {len(runs)} runs '
                 f'(taus {sorted({tuple(r["taus"]) for r in runs})}); one train step of one run '
                 f'~{flops / 1e9:.2f} GFLOP -> {flops * steps * exp.epochs * len(runs) / 1e12:.1f}'
                 f' TFLOP for the whole experiment; config {cfg}')
  return '\n'.join(lines)


def launch(exp: presets.Experiment, models: Sequence[str], *, workdir: str | None = None,
           resume: bool = False, dry_run: bool = False, data_dir: str | None = None,
           progress: bool = True, log: Callable[[str], None] = print) -> dict | None:
  """Plans (all checks before any compilation), then describes (dry run) or runs."""
  if resume and workdir is None:
    raise ValueError('--resume needs the --workdir of the run to continue.')
  p = plan(exp, models, data_dir=data_dir)
  if dry_run:
    log(describe(p))
    return None
  workdir = workdir or default_workdir(exp, models, 'sweep' if exp.taus and len(exp.taus) > 1
                                       else 'run')
  log(f'workdir: {workdir}  ({len(p.folds)} folds, models {", ".join(models)}, '
      f'{jax.device_count()} device(s))')
  return run_experiment(p, workdir, resume=resume, progress=progress, log=log)
