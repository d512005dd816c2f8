"""experiments/sweep.py: a tau grid x folds in one program, Table VI layout and heat-maps."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mstrnn_jax import evaluate
import subproc

ROOT = subproc.ROOT


@pytest.mark.slow
def test_sweep_writes_table_vi_and_heatmaps(tmp_path):
  workdir = tmp_path / 'sweep'
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, 'experiments', 'sweep.py'),
      '--dataset=synth3a',
      '--preset=tiny',
      '--tau1=2,30',
      '--tau2=50,100',
      '--epochs=1',
      '--subjects=0,1',
      f'--workdir={workdir}',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    env=subproc.cpu_env(),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(workdir / 'results.json') as f:
    res = json.load(f)
  entry = res['models']['mstrnn']
  assert len(entry['runs']) == 8  # 4 tau pairs x 2 folds, one program
  assert sorted(entry['summary']) == ['2,100', '2,50', '30,100', '30,50']
  # Each pair's summary is computed from exactly its own folds.
  acc = np.asarray(entry['history']['test_acc'])
  for key, summary in entry['summary'].items():
    rows = [r['run'] for r in entry['runs'] if ','.join(f'{t:g}' for t in r['taus']) == key]
    assert summary['mean']['action'] == pytest.approx(
      evaluate.summarize_group(acc[rows], ['action'])['mean']['action']
    )
  s = entry['summary']['30,100']
  row = f'| | 30 | {evaluate.fmt(entry["summary"]["30,50"]["mean"]["action"], entry["summary"]["30,50"]["se"]["action"])}'
  assert row in proc.stdout and evaluate.fmt(s['mean']['action'], s['se']['action']) in proc.stdout
  assert 'τ1 \\ τ2' in proc.stdout
  # The selection and BN-statistics tables have one column per tau pair.
  for table in ('selections', 'eval_stats'):
    header = res['tables'][table].splitlines()[0]
    assert all(f'MSTRNN TAUS {k}' in header for k in entry['summary']), header
  assert os.path.exists(workdir / 'heatmap_mstrnn_action.png')
