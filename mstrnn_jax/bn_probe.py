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
* **shift**: per site, how far a subject's own statistics sit from the population's,
  ``|mu_s - mu_P| / sqrt(var_P + eps)`` and ``|log((var_s + eps) / (var_P + eps))|`` averaged
  over steps and channels, for the held-out subject, the validation subjects (also unseen in
  training) and the training subjects (the within-population spread).

    python experiments/bn_probe.py --workdir=runs/C1rs3i_mstrnn     # writes <workdir>/bn_probe/

The pieces compose on any stats trees (``models.init(...)['batch_stats']`` structure):
``bn_sites(cfg)``, ``splice(population, subject, sites, k)``, ``shift(subject, population,
steps, eps)``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax import configs, evaluate, models, train

Site = tuple[str, tuple[tuple[str, str], ...]]  # (name, ((module, bn node), ...))
CONTEXT_KEYS = ('bn_k_tilde', 'bn_z_tilde')  # MSTRNN context units; the other BNs: feature units


def _is_bn(node: Any) -> bool:
  return isinstance(node, Mapping) and set(node) == {'mean', 'var'}


def bn_sites(cfg: configs.ModelConfig) -> list[Site]:
  """The BN nodes of ``cfg``'s model grouped by layer, in forward order.

  Layers are ``configs.layer_shapes``' names; an MSTRNN context layer ``l`` is split into its
  feature units (``feature{l}``: ``bn_k``, ``bn_z``) and context units (``context{l}``:
  ``bn_k_tilde``, ``bn_z_tilde``). Every BN node appears in exactly one site.
  """
  stats = jax.eval_shape(lambda: models.init(cfg, jax.random.PRNGKey(0)))['batch_stats']
  sites = []
  for name in configs.layer_shapes(cfg):
    module, part = name, None  # part: None (every BN of the module), True / False (context)
    if cfg.model == 'mstrnn' and name.startswith(('feature', 'context')):
      module = 'context_layer' + name.removeprefix('feature').removeprefix('context')
      part = name.startswith('context')
    nodes = tuple(
      (module, key)
      for key, node in sorted(stats.get(module, {}).items())
      if _is_bn(node) and (part is None or (key in CONTEXT_KEYS) == part)
    )
    if nodes:
      sites.append((name, nodes))
  listed = {node for _, nodes in sites for node in nodes}
  every = {(m, k) for m, sub in stats.items() for k, node in sub.items() if _is_bn(node)}
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


def _rows(subjects: np.ndarray, subject: int) -> tuple[np.ndarray, np.ndarray]:
  """Dataset rows of ``subject`` and an all-True mask (``train.subject_statistics``' inputs)."""
  idx = np.nonzero(subjects == subject)[0].astype(np.int32)
  return idx, np.ones(len(idx), bool)


def probe_workdir(workdir: str, model: str | None = None, data_dir: str | None = None) -> dict:
  """The prefix splice and the shifts of every fold of ``workdir``'s ``model`` (latest
  checkpoint). Returns the JSON-ready result (see the module docstring); ``reported`` holds
  results.json's joint accuracies at the checkpoint's epoch under ``population`` and
  ``subject`` statistics (when results.json has them), which the splice's two ends recompute."""
  from mstrnn_jax import analysis, checkpoint, compare  # pylint: disable=import-outside-toplevel

  run = checkpoint.load_run(workdir, model)
  model = run.model_cfg.model
  if run.stats_mode != 'population':
    raise ValueError(
      f'{workdir}: its checkpoint holds no population statistics (config.eval_stats of the run: '
      f'{run.experiment["experiment"].get("eval_stats")}); the probe compares them with subject '
      'statistics, so train with population first in --config.eval_stats.'
    )
  ds = analysis.load_workdir_data(run.experiment, data_dir)
  exp = run.experiment['experiment']
  voting_steps, rule = int(exp['voting_steps']), exp.get('vote_rule', 'vote')
  fns = train.model_fns(run.model_cfg)
  sites = bn_sites(run.model_cfg)
  videos = jnp.asarray(ds.videos)
  labels = jnp.asarray(train.stack_labels(ds.labels, fns.heads))
  steps, eps = ds.videos.shape[1], run.model_cfg.bn_epsilon
  names = list(ds.subject_names)
  per_run = []
  for r, info in enumerate(run.runs):
    params = jax.tree.map(lambda x, r=r: x[r], run.params)
    population = jax.tree.map(lambda x, r=r: x[r], run.batch_stats)
    running = jax.tree.map(lambda x, r=r: x[r], run.running_stats)
    taus = jnp.asarray(info['taus'], jnp.float32)
    test = int(info['test_subject'])
    val = [names.index(v) for v in info.get('validation_subjects', [])]
    stats_of = {}
    for s in range(len(names)):
      rows, mask = _rows(ds.subjects, s)
      stats_of[s] = _subject_stats(fns, params, running, videos, rows, mask, taus)
    rows, mask = _rows(ds.subjects, test)
    accuracy = [
      float(
        _joint_accuracy(
          fns,
          voting_steps,
          rule,
          params,
          splice(population, stats_of[test], sites, k),
          videos,
          labels,
          rows,
          mask,
          taus,
        )
      )
      for k in range(len(sites) + 1)
    ]
    shifts = {s: shift(stats_of[s], population, sites, steps, eps) for s in stats_of}
    training = [s for s in stats_of if s != test and s not in val]

    def mean_over(members, shifts=shifts):
      return {
        name: {
          q: float(np.mean([shifts[s][name][q] for s in members])) for q in ('mean', 'log_var')
        }
        for name, _ in sites
      }

    per_run.append(
      {
        'run': r,
        'test_subject': names[test],
        'validation_subjects': [names[v] for v in val],
        'accuracy': accuracy,
        'shift': {
          'test': mean_over([test]),
          'validation': mean_over(val) if val else None,
          'training': mean_over(training),
        },
      }
    )
  reported = {}
  if os.path.exists(os.path.join(workdir, 'results.json')):
    history = compare.load(workdir)['models'][model]['history']
    reported = {
      mode: [float(a[run.epoch - 1][-1]) for a in history[f'test_acc_{mode}']]
      for mode in ('population', 'subject')
      if f'test_acc_{mode}' in history and len(history[f'test_acc_{mode}'][0]) >= run.epoch
    }
  return {
    'workdir': workdir,
    'model': model,
    'epoch': run.epoch,
    'sites': [name for name, _ in sites],
    'site_nodes': {name: [f'{m}.{k}' for m, k in nodes] for name, nodes in sites},
    'runs': per_run,
    'reported': reported,
  }


def splice_table(result: dict) -> str:
  """Markdown: held-out joint accuracy with subject statistics up to each site, mean ± SE over
  folds, and the change each site adds (paired by fold)."""
  acc = np.array([r['accuracy'] for r in result['runs']])  # [folds, sites + 1]
  lines = [
    f'{result["model"].upper()}, {result["workdir"]} (epoch {result["epoch"]}, '
    f'{acc.shape[0]} folds): held-out joint accuracy (%) with `subject` statistics at the '
    'sites up to and including the row, `population` statistics after it',
    '',
    '| subject statistics up to | joint accuracy | change from the row above (paired) |',
    '|---|---|---|',
    f'| none (`population`) | {evaluate.fmt(*evaluate.mean_se(acc[:, 0]))} | |',
  ]
  for k, name in enumerate(result['sites'], start=1):
    step = evaluate.fmt(*evaluate.mean_se(acc[:, k] - acc[:, k - 1]))
    lines.append(f'| {name} | {evaluate.fmt(*evaluate.mean_se(acc[:, k]))} | {step} |')
  for mode, values in result['reported'].items():
    column = 0 if mode == 'population' else -1
    same = int(np.sum(np.isclose(acc[:, column], values, atol=1e-6)))
    lines.append(
      f'\nresults.json, epoch {result["epoch"]}, `{mode}`: '
      f'{evaluate.fmt(*evaluate.mean_se(values))} '
      f'(the probe recomputes it exactly on {same} of {len(values)} folds)'
    )
  return '\n'.join(lines) + '\n'


def shift_table(result: dict, quantity: str = 'mean') -> str:
  """Markdown: per site, the shift of the held-out, validation and training subjects'
  statistics from the population's (mean ± SE over folds) and held-out minus training."""
  what = {
    'mean': '|mu_s - mu_P| / sqrt(var_P + eps)',
    'log_var': '|log((var_s + eps) / (var_P + eps))|',
  }[quantity]
  lines = [
    f"Shift of a subject's own per-step statistics from the population statistics, {what}, "
    'mean over steps and channels; mean ± SE over folds',
    '',
    '| site | BN nodes | held-out subject | validation subjects | training subjects '
    '| held-out - training (paired) |',
    '|---|---|---|---|---|---|',
  ]
  for name in result['sites']:

    def of(group, name=name):
      return np.array([r['shift'][group][name][quantity] for r in result['runs']])

    test, training = of('test'), of('training')
    has_val = all(r['shift']['validation'] is not None for r in result['runs'])
    val = evaluate.fmt(*evaluate.mean_se(of('validation'))) if has_val else '-'
    lines.append(
      f'| {name} | {", ".join(result["site_nodes"][name])} | '
      f'{evaluate.fmt(*evaluate.mean_se(test))} | {val} | '
      f'{evaluate.fmt(*evaluate.mean_se(training))} | '
      f'{evaluate.fmt(*evaluate.mean_se(test - training))} |'
    )
  return '\n'.join(lines) + '\n'


def markdown(result: dict) -> str:
  return '\n'.join(
    [splice_table(result), shift_table(result, 'mean'), shift_table(result, 'log_var')]
  )


def write(result: dict, out_dir: str) -> list[str]:
  """bn_probe.json, bn_probe.md and bn_probe.png in ``out_dir``; never overwrites."""
  import json  # pylint: disable=import-outside-toplevel

  from mstrnn_jax import plots, workdir as workdirs  # pylint: disable=import-outside-toplevel

  paths = [os.path.join(out_dir, f'bn_probe.{ext}') for ext in ('json', 'md', 'png')]
  for path in paths:
    if os.path.exists(path):
      raise FileExistsError(f'{path} exists; choose another --out_dir (nothing is overwritten).')
  os.makedirs(out_dir, exist_ok=True)
  workdirs.write_atomic(paths[0], json.dumps(result, indent=1))
  workdirs.write_atomic(paths[1], markdown(result))
  plots.save(plots.bn_splice(result), paths[2])
  return paths
