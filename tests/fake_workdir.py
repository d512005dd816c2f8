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


def make(wd: str, model_names, population: bool = False, **overrides):
  """Writes the workdir ``wd`` (tiny synth3a, 2 subjects, 5 frames per primitive, ``overrides``
  on top) for ``model_names``; returns the plan."""
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
    stats = _stats(rng, n_runs, shapes['batch_stats'])
    pop = _stats(rng, n_runs, shapes['batch_stats']) if population else None
    ckpt = checkpoint.Checkpointer(os.path.join(wd, 'checkpoints', m))
    ckpt.save(1, {'params': params, 'batch_stats': stats}, {'epoch': 1, 'history': {}}, pop)
    ckpt.close()
  return plan
