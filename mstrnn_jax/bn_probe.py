"""Where a held-out subject's batch-norm statistics matter: a probe of trained workdirs.

Every BN of the three models keeps statistics per time step. A fold's held-out subject is
evaluated (``config.eval_stats``) with ``population`` statistics (re-estimated on the fold's
training set) or, transductively, with ``subject`` statistics (its own videos as one batch). The
probe asks where between the two the accuracy changes, on the final weights of every fold:

* **prefix splice**: the held-out subject evaluated with ``subject`` statistics at the first
  ``k`` BN sites (in forward order, :func:`bn_sites`) and ``population`` statistics at the rest,
  for ``k = 0`` (all population) .. ``n`` (all subject). Splicing a prefix keeps the statistics
  consistent: the subject statistics of the first ``k`` sites are exactly those of a pass that
  normalises every earlier site with subject statistics too (the model has no top-down path).
* **own accuracy**: the validation and the training subjects' joint accuracy with ``population``
  and with their own ``subject`` statistics (what the held-out subject's two ends compare with).
* **unseen** (with validation subjects): the held-out subject normalised with the statistics of
  the validation subjects' videos as one batch, another subject unseen in training, which uses
  no held-out data (non-transductive); and the mirror, each validation subject normalised with
  the held-out subject's statistics, which uses no held-out label.
* **shift**: per site, how far a subject's own statistics sit from the population's,
  ``|mu_s - mu_P| / sqrt(var_P + eps)`` and ``|log((var_s + eps) / (var_P + eps))|`` averaged
  over steps and channels, for the held-out subject, the validation subjects (also unseen in
  training) and the training subjects (the within-population spread).

* **held-out videos of another draw** (``test_overrides``, e.g.
  ``{'data.synth3a.clips_per_primitive': 1}``): every number above with each fold's held-out
  subject evaluated on its videos from the dataset rebuilt with those data settings (the same
  subjects and labels; :func:`variant_data`), the trained network and its population statistics
  unchanged. It separates what a data property does to training from what it does to the
  evaluated videos.

    python experiments/bn_probe.py --workdir=runs/C1rs3i_mstrnn   # writes <workdir>/bn_probe/mstrnn/

The pieces compose on any stats trees (``models.init(...)['batch_stats']`` structure):
``bn_sites(cfg)``, ``splice(population, subject, sites, k)``, ``shift(subject, population,
steps, eps)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax import configs, evaluate, experiment_configs, models, train

Site = tuple[str, tuple[tuple[str, str], ...]]  # (name, ((module, bn node), ...))
MODES = ('population', 'subject')  # the splice's two ends
# Statistics of another subject unseen in training: the held-out subject normalised with the
# validation subjects' statistics, and each validation subject with the held-out subject's.
UNSEEN = 'unseen'
QUANTITIES = ('mean', 'log_var')  # the shift's two measures (:func:`shift`)


def bn_sites(cfg: configs.ModelConfig) -> list[Site]:
  """The BN nodes of ``cfg``'s model grouped by layer, in forward order.

  Layers are ``configs.layer_shapes``' names; an MSTRNN context layer ``l`` is split into its
  feature units (``feature{l}``: ``bn_k``, ``bn_z``) and context units (``context{l}``:
  ``bn_k_tilde``, ``bn_z_tilde``). Every BN node appears in exactly one site.
  """
  stats = jax.eval_shape(lambda: models.init(cfg, jax.random.PRNGKey(0)))['batch_stats']
  sites = []
  for name in configs.layer_shapes(cfg):
    module, feature = name, None  # feature: None (every BN of the module) or which units
    if cfg.model == 'mstrnn' and name.startswith(('feature', 'context')):
      module = 'context_layer' + name.removeprefix('feature').removeprefix('context')
      feature = name.startswith('feature')
    nodes = tuple(
      (module, key)
      for key, node in sorted(stats.get(module, {}).items())
      if train.is_bn(node) and (feature is None or (key in models.FEATURE_KEYS) == feature)
    )
    if nodes:
      sites.append((name, nodes))
  listed = {node for _, nodes in sites for node in nodes}
  every = {(m, k) for m, sub in stats.items() for k, node in sub.items() if train.is_bn(node)}
  if listed != every:
    raise ValueError(
      f'mstrnn_jax/bn_probe.py: BN nodes {sorted(every - listed)} of {cfg.model} are in no '
      'site; extend bn_sites for this layer.'
    )
  return sites


def splice(population: Any, subject: Any, sites: Sequence[Site], k: int) -> Any:
  """``population`` with the nodes of ``sites[:k]`` taken from ``subject`` (same structure)."""
  out = {m: dict(sub) for m, sub in population.items()}
  for _, nodes in sites[:k]:
    for module, key in nodes:
      out[module][key] = subject[module][key]
  return out


def shift(subject: Any, population: Any, sites: Sequence[Site], steps: int, eps: float) -> dict:
  """Per site: ``{'mean': |mu_s - mu_P| / sqrt(var_P + eps), 'log_var': |log((var_s + eps) /
  (var_P + eps))|}``, each averaged over the first ``steps`` steps and every channel of the
  site's nodes (leaves ``[bn_steps, channels]``)."""
  out = {}
  for name, nodes in sites:
    z, r = [], []
    for module, key in nodes:
      s, p = subject[module][key], population[module][key]
      var_p = p['var'][:steps] + eps
      z.append(jnp.abs(s['mean'][:steps] - p['mean'][:steps]).ravel() / jnp.sqrt(var_p).ravel())
      r.append(jnp.abs(jnp.log((s['var'][:steps] + eps) / var_p)).ravel())
    out[name] = {'mean': jnp.mean(jnp.concatenate(z)), 'log_var': jnp.mean(jnp.concatenate(r))}
  return out


@functools.partial(jax.jit, static_argnums=(0,))
def _subject_stats(fns, params, running, videos, rows, mask, taus):
  return train.subject_statistics(fns, params, running, videos, rows, mask, taus)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _joint_accuracy(fns, voting_steps, rule, params, stats, videos, labels, rows, mask, taus):
  logits = train.eval_step(fns, voting_steps, params, stats, videos[rows], taus)
  flags = evaluate.correct_flags(logits, labels[rows], fns.heads, voting_steps, rule)
  return 100.0 * jnp.sum(flags[:, -1] * mask) / jnp.sum(mask)


class _Fold(NamedTuple):
  """One trained run and the data it is evaluated on (leaves without the run axis)."""

  fns: train.ModelFns
  voting_steps: int
  rule: str
  params: Any
  running: Any
  taus: jax.Array
  videos: jax.Array  # uint8 [N, T, H, W, 3], the whole dataset
  labels: jax.Array  # int32 [N, n_heads]
  subjects: np.ndarray  # int [N]

  def rows(self, *subjects: int) -> tuple[np.ndarray, np.ndarray]:
    """Dataset rows of ``subjects`` and an all-True mask."""
    idx = np.nonzero(np.isin(self.subjects, subjects))[0].astype(np.int32)
    return idx, np.ones(len(idx), bool)

  def statistics(self, *subjects: int) -> Any:
    """The per-step statistics of ``subjects``' videos as one batch
    (``train.subject_statistics``; one subject: its own)."""
    rows, mask = self.rows(*subjects)
    return _subject_stats(self.fns, self.params, self.running, self.videos, rows, mask, self.taus)

  def accuracy(self, subject: int, stats: Any) -> float:
    """``subject``'s joint accuracy (%) normalised with ``stats``."""
    rows, mask = self.rows(subject)
    args = (self.params, stats, self.videos, self.labels, rows, mask, self.taus)
    return float(_joint_accuracy(self.fns, self.voting_steps, self.rule, *args))


def probe_fold(
  fold: _Fold,
  population: Any,
  sites: Sequence[Site],
  test: int,
  val: Sequence[int],
  eps: float,
  held_out: _Fold | None = None,
) -> dict:
  """One run: the splice on its held-out subject ``test``, every subject's own accuracy under
  both statistics and its shifts, averaged over the validation and over the training subjects,
  and (with validation subjects ``val``) the accuracies under another unseen subject's
  statistics: ``unseen[group][mode]`` for group ``test`` / ``validation`` and mode in
  ``MODES + (UNSEEN,)``. ``held_out``: the same run on other data, whose rows of ``test``
  are the held-out videos (default ``fold``)."""
  held_out = fold if held_out is None else held_out

  def on(s):  # the data a subject is evaluated on
    return held_out if s == test else fold

  stats_of = {s: on(s).statistics(s) for s in np.unique(fold.subjects).tolist()}
  training = [s for s in stats_of if s != test and s not in val]
  steps = fold.videos.shape[1]
  own = {s: (on(s).accuracy(s, population), on(s).accuracy(s, stats_of[s])) for s in stats_of}
  shifts = {s: shift(stats_of[s], population, sites, steps, eps) for s in stats_of}

  def accuracy_over(members):
    return {m: float(np.mean([own[s][i] for s in members])) for i, m in enumerate(MODES)}

  unseen = val_stats = None  # another unseen subject's statistics, both ways (no held-out label)
  if val:
    val_stats = fold.statistics(*val)
    unseen = {
      'test': {**accuracy_over([test]), UNSEEN: held_out.accuracy(test, val_stats)},
      'validation': {
        **accuracy_over(val),
        UNSEEN: float(np.mean([fold.accuracy(v, stats_of[test]) for v in val])),
      },
    }

  def shift_over(members):
    return {
      name: {q: float(np.mean([shifts[s][name][q] for s in members])) for q in QUANTITIES}
      for name, _ in sites
    }

  return {
    'accuracy': [
      held_out.accuracy(test, splice(population, stats_of[test], sites, k))
      for k in range(len(sites) + 1)
    ],
    'own_accuracy': {
      'validation': accuracy_over(val) if val else None,
      'training': accuracy_over(training),
    },
    'unseen': unseen,
    'shift': {
      'test': shift_over([test]),
      'validation': shift_over(val) if val else None,
      'training': shift_over(training),
      # the held-out subject's statistics measured from the validation subjects' (as if they
      # were the population): how far apart two unseen subjects sit
      'test_from_validation': {
        name: {q: float(v) for q, v in d.items()}
        for name, d in shift(stats_of[test], val_stats, sites, steps, eps).items()
      }
      if val
      else None,
    },
  }


def variant_data(record: dict, data_dir: str | None, overrides: dict, ds) -> tuple[Any, dict]:
  """The dataset of ``record`` (a workdir's experiment record, trained on ``ds``) rebuilt with
  the data settings ``overrides`` (``{'data.synth3a.clips_per_primitive': 1}``), and what was
  done to fit it: videos shorter than ``ds``'s padded length are extended with their last frame
  (the padding rule), longer ones cut to it (BN statistics exist for that many steps only);
  ``{'overrides', 'cut_videos', 'frames'}``. ValueError (one line, naming
  ``--test_override``) for a setting outside ``data.*`` or unknown, or a dataset whose subjects
  or labels differ from ``ds``'s."""
  from mstrnn_jax import analysis  # pylint: disable=import-outside-toplevel

  flag = '--test_override=' + ','.join(f'{k}={v}' for k, v in overrides.items())
  if not overrides or any(not k.startswith('data.') for k in overrides):
    raise ValueError(f'{flag}: give data settings only (data.<dataset>.<field>=<value>).')
  try:
    config = experiment_configs.override(
      experiment_configs.from_dict(record['experiment']), overrides
    )
  except (ValueError, TypeError, KeyError) as e:
    raise ValueError(f'{flag}: {e}') from None
  variant = analysis.load_workdir_data(
    {**record, 'experiment': experiment_configs.to_dict(config)}, data_dir
  )
  same = (
    list(variant.subject_names) == list(ds.subject_names)
    and np.array_equal(variant.subjects, ds.subjects)
    and set(variant.labels) == set(ds.labels)
    and all(np.array_equal(variant.labels[h], ds.labels[h]) for h in ds.labels)
    and variant.videos.shape[2:] == ds.videos.shape[2:]
  )
  if not same:
    raise ValueError(
      f"{flag}: its dataset has other subjects, labels or frame size than the workdir's; "
      'choose settings that change only how the same videos are drawn.'
    )
  frames = ds.videos.shape[1]
  videos = variant.videos[:, :frames]
  if videos.shape[1] < frames:
    last = np.repeat(videos[:, -1:], frames - videos.shape[1], axis=1)
    videos = np.concatenate([videos, last], axis=1)
  info = {
    'overrides': dict(overrides),
    'cut_videos': int(np.sum(variant.lengths > frames)),
    'frames': frames,
  }
  return dataclasses.replace(
    variant, videos=videos, lengths=np.minimum(variant.lengths, frames)
  ), info


def _reported(workdir: str, model: str, epoch: int) -> dict:
  """results.json's joint accuracies at ``epoch`` under ``MODES`` (those it has), per run."""
  from mstrnn_jax import compare  # pylint: disable=import-outside-toplevel

  if not os.path.exists(os.path.join(workdir, 'results.json')):
    return {}
  history = compare.load(workdir)['models'][model]['history']
  return {
    mode: [float(a[epoch - 1][-1]) for a in history[f'test_acc_{mode}']]
    for mode in MODES
    if f'test_acc_{mode}' in history and len(history[f'test_acc_{mode}'][0]) >= epoch
  }


def probe_workdir(
  workdir: str,
  model: str | None = None,
  data_dir: str | None = None,
  progress: bool = False,
  test_overrides: dict | None = None,
) -> dict:
  """:func:`probe_fold` for every fold of ``workdir``'s ``model`` (latest checkpoint). Returns
  the JSON-ready result; ``reported`` holds results.json's joint accuracies at the
  checkpoint's epoch under ``population`` and ``subject`` statistics (when results.json has
  them), which the splice's two ends recompute (on the workdir's own held-out videos).
  ``test_overrides``: the held-out videos come from the dataset with these data settings
  (:func:`variant_data`; ``test_data`` in the result says how). ``progress``: a progress bar
  over the folds (stderr)."""
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

  from mstrnn_jax import analysis, checkpoint  # pylint: disable=import-outside-toplevel

  run = checkpoint.load_run(workdir, model)
  if run.stats_mode != 'population':
    raise ValueError(
      f'{workdir}: its checkpoint holds no population statistics (config.eval_stats of the run: '
      f'{run.experiment["experiment"].get("eval_stats")}); the probe compares them with subject '
      'statistics, so train with population first in --config.eval_stats.'
    )
  ds = analysis.load_workdir_data(run.experiment, data_dir)
  exp = run.experiment['experiment']
  fns = train.model_fns(run.model_cfg)
  sites = bn_sites(run.model_cfg)
  names = list(ds.subject_names)
  videos = jnp.asarray(ds.videos)
  labels = jnp.asarray(train.stack_labels(ds.labels, fns.heads))
  test_data, held_out_videos = None, videos
  if test_overrides:
    variant, test_data = variant_data(run.experiment, data_dir, test_overrides, ds)
    held_out_videos = jnp.asarray(variant.videos)
  per_run = []
  folds = tqdm(
    run.runs,
    desc=f'bn probe {run.model_cfg.model}',
    unit='fold',
    file=sys.stderr,
    disable=not progress,
    dynamic_ncols=True,
  )
  for r, info in enumerate(folds):
    at = functools.partial(jax.tree.map, lambda x, r=r: x[r])
    fold = _Fold(
      fns,
      int(exp['voting_steps']),
      exp.get('vote_rule', 'vote'),
      at(run.params),
      at(run.running_stats),
      jnp.asarray(info['taus'], jnp.float32),
      videos,
      labels,
      np.asarray(ds.subjects),
    )
    test = int(info['test_subject'])
    val = [names.index(v) for v in info.get('validation_subjects', [])]
    held_out = fold._replace(videos=held_out_videos)
    result = probe_fold(
      fold, at(run.batch_stats), sites, test, val, run.model_cfg.bn_epsilon, held_out
    )
    per_run.append(
      {
        'run': r,
        'test_subject': names[test],
        'validation_subjects': [names[v] for v in val],
        **result,
      }
    )
  return {
    'workdir': workdir,
    'model': run.model_cfg.model,
    'epoch': run.epoch,
    'sites': [name for name, _ in sites],
    'site_nodes': {name: [f'{m}.{k}' for m, k in nodes] for name, nodes in sites},
    'runs': per_run,
    'reported': _reported(workdir, run.model_cfg.model, run.epoch),
    'test_data': test_data,
  }


def splice_table(result: dict) -> str:
  """Markdown: held-out joint accuracy with subject statistics up to each site, mean ± SE over
  folds, and the change each site adds (paired by fold)."""
  acc = np.array([r['accuracy'] for r in result['runs']])  # [folds, sites + 1]
  variant = result.get('test_data')
  lines = [
    f'{result["model"].upper()}, {result["workdir"]} (epoch {result["epoch"]}, '
    f'{acc.shape[0]} folds): held-out joint accuracy (%) with `subject` statistics at the '
    'sites up to and including the row, `population` statistics after it',
    '',
  ]
  if variant:
    settings = ', '.join(f'`{k}={v}`' for k, v in variant['overrides'].items())
    lines += [
      f'Held-out videos from the dataset with {settings} (the same subjects and labels; '
      f"{variant['cut_videos']} of its videos cut to the workdir's {variant['frames']} "
      "frames); the network and its population statistics are the workdir's.",
      '',
    ]
  lines += [
    '| subject statistics up to | joint accuracy | change from the row above (paired) |',
    '|---|---|---|',
    f'| none (`population`) | {evaluate.fmt(*evaluate.mean_se(acc[:, 0]))} | |',
  ]
  for k, name in enumerate(result['sites'], start=1):
    step = evaluate.fmt(*evaluate.mean_se(acc[:, k] - acc[:, k - 1]))
    lines.append(f'| {name} | {evaluate.fmt(*evaluate.mean_se(acc[:, k]))} | {step} |')
  for group in ('validation', 'training'):
    own = [r['own_accuracy'][group] for r in result['runs']]
    if all(o is not None for o in own):
      cells = ', '.join(
        f'`{m}` {evaluate.fmt(*evaluate.mean_se([o[m] for o in own]))}' for m in MODES
      )
      lines.append(f'\n{group} subjects, their own joint accuracy: {cells}')
  for mode, values in result['reported'].items():
    column = 0 if mode == 'population' else -1
    same = int(np.sum(np.isclose(acc[:, column], values, atol=1e-6)))
    check = (
      "on the workdir's own held-out videos"
      if variant
      else f'the probe recomputes it exactly on {same} of {len(values)} folds'
    )
    lines.append(
      f'\nresults.json, epoch {result["epoch"]}, `{mode}`: '
      f'{evaluate.fmt(*evaluate.mean_se(values))} ({check})'
    )
  return '\n'.join(lines) + '\n'


def unseen_table(result: dict) -> str:
  """Markdown: the held-out and the validation subjects' joint accuracy under ``population``
  statistics, another unseen subject's and their own (mean ± SE over folds), and the paired
  change from ``population``; empty when the runs had no validation subjects."""
  runs = [r['unseen'] for r in result['runs']]
  if not runs or any(u is None for u in runs):
    return ''
  rows = {
    'test': "held-out subject, with the validation subjects' statistics",
    'validation': "validation subjects, each with the held-out subject's statistics",
  }
  lines = [
    f"{result['model'].upper()}: joint accuracy (%) under another unseen subject's statistics "
    '(`unseen`; no held-out data for the held-out row, no held-out label for the mirror)',
    '',
    '| subject evaluated | `population` | `unseen` | `subject` (own) | `unseen` - `population` '
    '(paired) | `subject` - `population` (paired) |',
    '|---|---|---|---|---|---|',
  ]
  for group, label in rows.items():
    acc = {m: np.array([u[group][m] for u in runs]) for m in (*MODES, UNSEEN)}
    cells = [evaluate.fmt(*evaluate.mean_se(acc[m])) for m in ('population', UNSEEN, 'subject')]
    cells += [
      evaluate.fmt(*evaluate.mean_se(acc[m] - acc['population'])) for m in (UNSEEN, 'subject')
    ]
    lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def shift_table(result: dict, quantity: str = 'mean') -> str:
  """Markdown: per site, the shift of the held-out, validation and training subjects'
  statistics from the population's (mean ± SE over folds) and held-out minus training; with
  validation subjects also the held-out subject's shift from their statistics instead."""
  what = {
    'mean': '|mu_s - mu_P| / sqrt(var_P + eps)',
    'log_var': '|log((var_s + eps) / (var_P + eps))|',
  }[quantity]
  lines = [
    f"Shift of a subject's own per-step statistics from the population statistics, {what}, "
    'mean over steps and channels; mean ± SE over folds',
    '',
    '| site | BN nodes | held-out subject | validation subjects | training subjects '
    "| held-out - training (paired) | held-out, from the validation subjects' statistics |",
    '|---|---|---|---|---|---|---|',
  ]
  has_val = all(r['shift']['validation'] is not None for r in result['runs'])
  for name in result['sites']:

    def of(group, name=name):
      return np.array([r['shift'][group][name][quantity] for r in result['runs']])

    test, training = of('test'), of('training')
    val, apart = (
      (evaluate.fmt(*evaluate.mean_se(of(g))) for g in ('validation', 'test_from_validation'))
      if has_val
      else ('-', '-')
    )
    lines.append(
      f'| {name} | {", ".join(result["site_nodes"][name])} | '
      f'{evaluate.fmt(*evaluate.mean_se(test))} | {val} | '
      f'{evaluate.fmt(*evaluate.mean_se(training))} | '
      f'{evaluate.fmt(*evaluate.mean_se(test - training))} | {apart} |'
    )
  return '\n'.join(lines) + '\n'


def markdown(result: dict) -> str:
  return '\n'.join(
    [
      splice_table(result),
      unseen_table(result),
      shift_table(result, 'mean'),
      shift_table(result, 'log_var'),
    ]
  )


def output_paths(out_dir: str) -> list[str]:
  """bn_probe.json, .md and .png in ``out_dir``; FileExistsError (one line) if any exists."""
  paths = [os.path.join(out_dir, f'bn_probe.{ext}') for ext in ('json', 'md', 'png')]
  for path in paths:
    if os.path.exists(path):
      raise FileExistsError(f'{path} exists; choose another --out_dir (nothing is overwritten).')
  return paths


def write(result: dict, out_dir: str) -> list[str]:
  """bn_probe.json, bn_probe.md and bn_probe.png in ``out_dir``; never overwrites."""
  from mstrnn_jax import plots, workdir as workdirs  # pylint: disable=import-outside-toplevel

  paths = output_paths(out_dir)
  os.makedirs(out_dir, exist_ok=True)
  workdirs.write_atomic(paths[0], json.dumps(result, indent=1))
  workdirs.write_atomic(paths[1], markdown(result))
  plots.save(plots.bn_splice(result), paths[2])
  return paths
