"""Validation subjects and evaluation-statistics modes in the LOSO driver (tiny preset)."""

import json
import os

import numpy as np
import pytest

from mstrnn_jax import evaluate, launch, plan
from mstrnn_jax import experiment_configs as ec


@pytest.fixture(scope='module')
def val_run(tmp_path_factory):
  config = ec.override(
    ec.get_config('tiny', 'synth3a'), {'validation_subjects': 1, 'subjects': (0, 2)}
  )
  p = plan.plan(config)
  workdir = str(tmp_path_factory.mktemp('val') / 'run')
  out = launch.run_experiment(p, workdir, progress=False, log=lambda s: None)
  return p, workdir, out


def test_validation_subjects_leave_the_training_set(val_run):
  p, _, _ = val_run
  ds = p.dataset
  for f in p.folds:
    vals, rows = p.validation[int(f.test_subject)]
    assert len(vals) == 1 and vals[0] != f.test_subject
    assert set(ds.subjects[rows]) == set(vals)
    assert not np.isin(ds.subjects[f.train_idx], vals).any()
    assert set(ds.subjects[f.train_idx]) == set(range(3)) - {int(f.test_subject), vals[0]}
  tables = plan.build_tables(p, plan.run_table(p, 'mstrnn'))
  assert tables.val_idx.shape == (2, 27) and tables.val_mask.all()


def test_history_and_results_report_modes_and_selections(val_run):
  p, workdir, out = val_run
  entry = out['models']['mstrnn']
  h = {k: np.asarray(v) for k, v in entry['history'].items()}
  modes = tuple(p.config.eval_stats)
  assert modes[0] == 'population'
  for s in ('test', 'val'):
    np.testing.assert_array_equal(h[f'{s}_acc'], h[f'{s}_acc_{modes[0]}'])
    for m in modes:
      assert h[f'{s}_acc_{m}'].shape == (2, p.config.epochs, 2)
  summary = entry['summary']['2,100']
  sel = summary['selections']
  assert list(sel) == list(evaluate.SELECTIONS)
  epochs = np.argmax(h['val_acc'][..., -1], axis=1)
  assert sel['validation']['per_fold']['joint'] == [
    h['test_acc'][r, e, -1] for r, e in enumerate(epochs)
  ]
  assert set(summary['eval_stats']) == set(modes)
  assert [r['validation_subjects'] for r in entry['runs']] == [
    [p.dataset.subject_names[p.validation[s][0][0]]] for s in (0, 2)
  ]
  md = open(os.path.join(workdir, 'results.md')).read()
  assert 'epoch chosen on validation subjects' in md and '| subject | validation |' in md
  header = open(os.path.join(workdir, 'metrics.csv')).readline()
  assert 'val_acc_running_joint' in header and 'test_acc_subject_joint' in header
  with open(os.path.join(workdir, 'results.json')) as f:
    assert 'eval_stats' in json.load(f)['tables']


def test_bad_settings_name_the_field():
  for values, match in (
    ({'validation_subjects': 2}, 'validation_subjects'),
    ({'eval_stats': ('running', 'batch')}, 'eval_stats'),
    ({'augment.tempo_range': 0.5}, 'augment.tempo_range'),
    ({'augment.tempo_knots': 0}, 'augment.tempo_knots'),
  ):
    with pytest.raises(ValueError, match=match):
      plan.plan(ec.override(ec.get_config('tiny', 'synth3a'), values))
