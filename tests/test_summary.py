"""experiments/summary.py and models.summary_table: shapes, per-layer counts, Table II."""

import subprocess
import sys

import jax

from mstrnn_jax import configs
from mstrnn_jax import models
import subproc


def test_layer_counts_add_up_to_the_parameter_tree():
  for model in configs.MODELS:
    cfg = configs.get_model_config(model, 'cl2ad')
    rows = models.layer_parameter_counts(cfg)
    params = jax.eval_shape(lambda: models.init(cfg, jax.random.PRNGKey(0)))['params']
    assert sum(c for _, _, c in rows) == sum(x.size for x in jax.tree.leaves(params))
    assert [r[0] for r in rows][-3:] == ['head:ado', 'head:action', 'head:modifier']
  rows = dict(
    (name, count)
    for name, _, count in models.layer_parameter_counts(configs.get_model_config('mstrnn', 'cl1ad'))
  )
  # context2: k_tilde 2x2x128x256 + b_tilde + z_tilde 3x3x256x256 + two BNs (gamma, beta).
  assert rows['context2'] == 2 * 2 * 128 * 256 + 256 + 9 * 256 * 256 + 4 * 256
  assert rows['pool1'] == 0


def test_summary_script_prints_every_model_next_to_table_ii():
  out = subprocess.run(
    [sys.executable, f'{subproc.ROOT}/experiments/summary.py', '--dataset=cl1ad'],
    capture_output=True,
    text=True,
    env=subproc.cpu_env(),
    check=True,
  ).stdout
  for model, paper in (('MSTRNN', '3.0M'), ('MSTNN', '4.6M'), ('LRCN', '4.6M')):
    assert model in out
    assert f'Table II (CL1AD, paper widths): {paper}' in out
  assert '[2, 2, 256]' in out and '[7, 7, 128]' in out  # context2 / context1 of Sec. III.A
  assert '2,979,469' in out
