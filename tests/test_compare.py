"""mstrnn_jax/compare.py and experiments/compare.py: workdirs side by side."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mstrnn_jax import compare, evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _workdir(path, width, train, test, val):
  """A results.json of one MSTRNN with 2 folds: histories [folds, epochs, 2] (head, joint)."""
  test, val = np.asarray(test, float), np.asarray(val, float)
  summary = evaluate.summarize_group(test, ['action'], val)
  res = {
    'experiment': {'model': 'mstrnn', 'width_scale': width, 'optim': {'clip': 12.0}},
    'models': {
      'mstrnn': {
        'runs': [{'run': 0, 'taus': [2.0, 100.0]}, {'run': 1, 'taus': [2.0, 100.0]}],
        'epochs_done': test.shape[1],
        'history': {'train_acc': train, 'test_acc': test.tolist(), 'val_acc': val.tolist()},
        'summary': {'2,100': summary},
      }
    },
  }
  os.makedirs(path)
  with open(os.path.join(path, 'results.json'), 'w') as f:
    json.dump(res, f)


def test_rows_read_selections_and_differing_settings(tmp_path):
  # fold 0: test peaks at epoch 2, validation at epoch 3; fold 1: both at epoch 1.
  test = [[[10, 10], [50, 50], [30, 30]], [[40, 40], [20, 20], [20, 20]]]
  val = [[[0, 0], [10, 10], [90, 90]], [[70, 70], [60, 60], [50, 50]]]
  train = [[[0, 0], [0, 0], [60, 60]], [[0, 0], [0, 0], [80, 80]]]
  _workdir(tmp_path / 'a', 0.125, train, test, val)
  _workdir(tmp_path / 'b', 0.25, train, test, val)
  rows = compare.rows([str(tmp_path / 'a'), str(tmp_path / 'b')])
  assert [r['settings'] for r in rows] == [{'width_scale': '0.125'}, {'width_scale': '0.25'}]
  r = rows[0]
  assert r['train_acc'] == pytest.approx((0 + 0 + 60 + 0 + 0 + 80) / 6)  # last 5 of 3 epochs
  assert r['val_best'] == pytest.approx(80) and r['val_last'] == pytest.approx(70)
  assert r['test:test_best'][0] == pytest.approx(45)  # (50 + 40) / 2
  assert r['test:validation'][0] == pytest.approx(35)  # (30 + 40) / 2
  assert r['test:last'][0] == pytest.approx(25)
  text = compare.table(rows)
  assert '| a | width_scale=0.125 | mstrnn | 2,100 | 3 | 2 | 23.3 | 80.0 | 70.0 | 45.00' in text


def test_cli_refuses_to_overwrite_and_names_missing_results(tmp_path):
  test = [[[10, 10]], [[20, 20]]]
  _workdir(tmp_path / 'a', 0.125, test, test, test)
  (tmp_path / 'out.md').write_text('keep')
  run = lambda *args: subprocess.run(
    [sys.executable, os.path.join(ROOT, 'experiments', 'compare.py'), *args],
    capture_output=True,
    text=True,
    env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu'),
  )
  proc = run(str(tmp_path / 'a'), f'--out={tmp_path / "out.md"}')
  assert proc.returncode != 0 and 'out.md exists' in proc.stderr
  assert (tmp_path / 'out.md').read_text() == 'keep'
  proc = run(str(tmp_path / 'missing'))
  assert proc.returncode != 0 and 'no results yet' in proc.stderr
  proc = run(str(tmp_path / 'a'), f'--out={tmp_path / "new.md"}')
  assert proc.returncode == 0, proc.stderr
  assert json.loads((tmp_path / 'new.json').read_text())[0]['model'] == 'mstrnn'
