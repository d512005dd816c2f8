"""Test helper: a workdir in the training engine's format without training.

Written with the engine's own functions (`plan.plan`, `workdir.prepare_workdir`,
`checkpoint.Checkpointer`); every model's checkpoint (epoch 1) holds random stacked variables of
`models.init`'s structure, different per run (a real init is slow to run eagerly), and, with
`population=True`, random population statistics beside them.
"""

import os

import jax
import numpy as np

from mstrnn_jax import checkpoint
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax import models
from mstrnn_jax import plan as planning
from mstrnn_jax import workdir as workdirs
from mstrnn_jax.model_records import model_config_from_record


def _stats(rng, n_runs, shapes):
  return jax.tree_util.tree_map_with_path(
    lambda path, s: (
      rng.uniform(0.5, 1.5, (n_runs,) + s.shape)
      if path[-1].key == 'var'
      else rng.normal(0, 0.1, (n_runs,) + s.shape)
    ).astype(np.float32),
    shapes,
  )


def _live_bn(params):
  """Every BN's gamma 1 and beta 0.5: no channel dies in the ReLUs, so no batch variance is 0
  (random gammas and betas leave whole layers dead, where normalising a zero variance with
  epsilon turns rounding into large differences)."""
  return jax.tree_util.tree_map_with_path(
    lambda path, x: (
      np.ones_like(x)
      if path[-1].key == 'gamma'
      else np.full_like(x, 0.5)
      if path[-1].key == 'beta'
      else x
    ),
    params,
  )


def make(wd: str, model_names, population: bool = False, live_bn: bool = False, **overrides):
  """Writes the workdir ``wd`` (tiny synth3a, 2 subjects, 5 frames per primitive, ``overrides``
  on top) for ``model_names``; returns the plan. ``live_bn``: see :func:`_live_bn`."""
  config = ec.override(
    ec.get_config('tiny', 'synth3a'),
    {
      'data.synth3a.frames_per_primitive': 5,
      'data.synth3a.num_subjects': 2,
      'model': ','.join(model_names),
      **overrides,
    },
  )
  plan = planning.plan(config)
  tables = {m: planning.run_table(plan, m) for m in model_names}
  workdirs.prepare_workdir(wd, plan, tables, resume=False)
  rng = np.random.default_rng(0)
  for m in model_names:
    cfg = model_config_from_record(plan.model_records[m])
    n_runs = len(tables[m])
    shapes = jax.eval_shape(lambda cfg=cfg: models.init(cfg, jax.random.key(0)))
    params = jax.tree.map(
      lambda s, n=n_runs: rng.normal(0, 0.4, (n,) + s.shape).astype(np.float32),
      shapes['params'],
    )
    if live_bn:
      params = _live_bn(params)
    stats = _stats(rng, n_runs, shapes['batch_stats'])
    pop = _stats(rng, n_runs, shapes['batch_stats']) if population else None
    ckpt = checkpoint.Checkpointer(os.path.join(wd, 'checkpoints', m))
    ckpt.save(1, {'params': params, 'batch_stats': stats}, {'epoch': 1, 'history': {}}, pop)
    ckpt.close()
  return plan
