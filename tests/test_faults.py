"""Issue 10, never lose a result: workdir safety, resume checks, damaged checkpoints, validation.

One finished tiny MSTRNN run (2 epochs, a checkpoint per epoch) is shared; tests that change a
workdir change a copy of it.
"""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from mstrnn_jax import analysis, checkpoint, epoch_loop, launch, models, parallel, plan
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax import workdir as workdirs
from mstrnn_jax.model_records import model_config_from_record
import damage
import subproc

ROOT = subproc.ROOT
ENV = subproc.cpu_env()
QUIET = dict(progress=False, log=lambda s: None)


def _tiny(**values):
  return ec.override(ec.get_config('tiny', 'synth3a'), values)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('faults') / 'run')
  launch.launch(_tiny(), workdir=wd, **QUIET)
  return wd


def _copy(src, tmp_path):
  dst = str(tmp_path / 'copy')
  shutil.copytree(src, dst)
  return dst


def _files(wd):
  return {os.path.relpath(os.path.join(r, f), wd) for r, _, fs in os.walk(wd) for f in fs}


def _json(wd, name):
  with open(os.path.join(wd, name)) as f:
    return json.load(f)


def _csv_rows(wd, model):
  with open(os.path.join(wd, 'metrics.csv')) as f:
    return [line for line in f if line.startswith(model + ',')]


# 1. Several model families in one workdir.
@pytest.mark.slow
def test_model_families_coexist_in_one_workdir(finished, tmp_path):
  wd = _copy(finished, tmp_path)
  before_files, before = _files(wd), _json(wd, 'results.json')['models']['mstrnn']
  before_rows = _csv_rows(wd, 'mstrnn')
  launch.launch(_tiny(model='lrcn'), workdir=wd, resume=True, **QUIET)
  assert before_files <= _files(wd)  # nothing written disappears
  res = _json(wd, 'results.json')
  assert list(res['models']) == ['mstrnn', 'lrcn'] and res['final']
  assert res['models']['mstrnn'] == before
  assert _csv_rows(wd, 'mstrnn') == before_rows and len(_csv_rows(wd, 'lrcn')) == 3 * 2
  record = _json(wd, 'experiment.json')
  assert record['experiment']['model'] == 'mstrnn,lrcn'
  assert list(record['models']) == list(record['runs_by_model']) == ['mstrnn', 'lrcn']
  md = open(os.path.join(wd, 'results.md')).read()
  assert '| MSTRNN | LRCN |' in md
  out = analysis.analyze_run(wd, 0, models=['lrcn'], out_dir=str(tmp_path / 'a'))
  assert list(out['models']) == ['lrcn']


# 2. A plain run into a folder holding other files.
def test_plain_run_refuses_a_non_empty_folder_that_is_not_a_run(tmp_path):
  (tmp_path / 'results.md').write_text('mine')
  with pytest.raises(FileExistsError, match='not a run') as e:
    launch.launch(_tiny(), workdir=str(tmp_path), **QUIET)
  assert '\n' not in str(e.value) and (tmp_path / 'results.md').read_text() == 'mine'
  assert os.listdir(tmp_path) == ['results.md']


# 3. --resume of a workdir that does not exist.
def test_resume_of_a_missing_workdir_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    launch.launch(_tiny(), workdir=str(tmp_path / 'typo'), resume=True, **QUIET)
  assert not os.path.exists(tmp_path / 'typo')


# 4. Differing settings on resume.
def test_resume_names_only_the_differing_fields(finished):
  with pytest.raises(ValueError) as e:
    launch.launch(_tiny(batch_size=2, voting_steps=2), workdir=finished, resume=True, **QUIET)
  msg = str(e.value)
  assert 'batch_size: 4 -> 2' in msg and 'voting_steps: 3 -> 2' in msg and '\n' not in msg
  assert 'eval_batch_size' not in msg and 'width_scale' not in msg
  with pytest.raises(ValueError, match='cannot shorten'):
    launch.launch(_tiny(epochs=1), workdir=finished, resume=True, **QUIET)


def test_resume_with_more_epochs_keeps_the_stored_lr_boundaries():
  old = ec.get_config('quick', 'synth3a')
  assert old.optim.lr_boundaries  # the test needs a schedule
  for new in (
    ec.with_epochs(old, 2 * old.epochs),  # what --epochs gives
    ec.override(old, {'epochs': 2 * old.epochs}),
  ):
    got = workdirs.resume_config(old, new)
    assert got.epochs == 2 * old.epochs and got.optim.lr_boundaries == old.optim.lr_boundaries
  other = ec.override(old, {'optim.lr_boundaries': (1, 2)})
  with pytest.raises(ValueError, match=r'optim.lr_boundaries: \[.*\] -> \[1, 2\]'):
    workdirs.resume_config(old, other)


def test_an_older_workdir_is_read_with_the_generator_it_ran():
  stored = {}
  for dataset in ('synthcl2', 'synth3a'):
    stored[dataset] = ec.to_dict(ec.get_config('quick', dataset))
    del stored[dataset]['data']['synthcl2']['count_timing']  # written before the field existed
  old = {k: ec.from_dict(v) for k, v in stored.items()}
  assert old['synthcl2'].data.synthcl2.count_timing == 'equal_total'
  # Another dataset's options do not stop a resume with today's defaults ...
  got = workdirs.resume_config(old['synth3a'], ec.get_config('quick', 'synth3a'))
  assert got.data.synthcl2.count_timing == 'equal_total'
  # ... the run's own do, by name, and the flag that restores them resumes.
  with pytest.raises(ValueError, match='data.synthcl2.count_timing: equal_total -> per_stroke'):
    workdirs.resume_config(old['synthcl2'], ec.get_config('quick', 'synthcl2'))
  same = ec.override(
    ec.get_config('quick', 'synthcl2'), {'data.synthcl2.count_timing': 'equal_total'}
  )
  assert workdirs.resume_config(old['synthcl2'], same).data.synthcl2.count_timing == 'equal_total'


def test_adding_lrcn_to_a_sweep_needs_no_tau_flags():
  old = _tiny(taus=((2.0, 100.0), (4.0, 100.0)))
  got = workdirs.resume_config(old, _tiny(model='lrcn'))
  assert (got.model, got.taus) == ('lrcn', None)
  assert plan.validate(got) == ('lrcn',)
  with pytest.raises(ValueError, match='lrcn has no time constants'):
    plan.validate(workdirs.resume_config(old, _tiny(model='lrcn', taus=old.taus)))
  assert workdirs.merge_models('mstrnn', 'lrcn') == 'mstrnn,lrcn'
  assert workdirs.merge_models('lrcn,mstnn', 'all') == 'mstrnn,lrcn,mstnn'
  assert workdirs.merge_models('all', 'lrcn') == 'all'


# 4 + 12. Train further; a non-finite loss keeps the last finite epoch's checkpoint.
@pytest.mark.slow
def test_nonfinite_loss_keeps_the_last_checkpoint_and_resume_trains_further(
  finished, tmp_path, monkeypatch
):
  wd = _copy(finished, tmp_path)
  before = _json(wd, 'results.json')['models']['mstrnn']
  real = parallel.to_host

  def poisoned(tree):
    m, flags = real(tree)
    return m._replace(loss=np.full_like(m.loss, np.nan)), flags

  monkeypatch.setattr(parallel, 'to_host', poisoned)
  with pytest.raises(epoch_loop.NonFiniteLossError) as e:
    launch.launch(_tiny(epochs=3), workdir=wd, resume=True, **QUIET)
  msg = str(e.value)
  assert 'at epoch 3' in msg and 'checkpoint of epoch 2' in msg and '\n' not in msg
  assert 'learning rate 0.005' in msg and 'data of synth3a' in msg
  assert 'time constants' not in msg  # taus (2, 100) are not small
  ckpt = checkpoint.Checkpointer(os.path.join(wd, 'checkpoints', 'mstrnn'))
  assert ckpt.latest_epoch() == 2
  ckpt.close()
  assert _json(wd, 'results.json')['models']['mstrnn']['epochs_done'] == 2
  monkeypatch.undo()
  launch.launch(_tiny(epochs=3), workdir=wd, resume=True, **QUIET)
  after = _json(wd, 'results.json')['models']['mstrnn']
  assert after['epochs_done'] == 3
  for key, value in before['history'].items():
    np.testing.assert_array_equal(np.asarray(after['history'][key])[:, :2], value)
  assert _json(wd, 'experiment.json')['experiment']['epochs'] == 3


def test_nonfinite_causes_name_small_time_constants_and_no_clipping():
  c = _tiny(**{'optim.clip': float('inf')})
  causes = epoch_loop.nonfinite_causes(c, {'taus': [1.5, 100.0]}, epoch=0)
  assert any('small time constants [1.5]' in x for x in causes)
  assert any('no gradient clipping' in x for x in causes)


# 5. analyze.py on a damaged newest checkpoint; an explicit damaged --epoch.
def _analyze(*args):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'experiments', 'analyze.py'), *args],
    cwd=ROOT,
    env=ENV,
    capture_output=True,
    text=True,
    timeout=600,
  )


@pytest.fixture
def random_two_epoch_workdir(tmp_path):
  """A workdir of the engine's format with random (alive) MSTRNN weights at epochs 1 and 2."""
  wd = str(tmp_path / 'run')
  config = _tiny(**{'data.synth3a.frames_per_primitive': 5, 'data.synth3a.num_subjects': 2})
  p = plan.plan(config)
  workdirs.prepare_workdir(wd, p, {'mstrnn': plan.run_table(p, 'mstrnn')}, resume=False)
  cfg = model_config_from_record(p.model_records['mstrnn'])
  shapes = jax.eval_shape(lambda: models.init(cfg, jax.random.key(0)))
  ckpt = checkpoint.Checkpointer(os.path.join(wd, 'checkpoints', 'mstrnn'))
  for epoch in (1, 2):
    rng = np.random.default_rng(epoch)
    params = jax.tree.map(
      lambda s: rng.normal(0, 0.4, (2,) + s.shape).astype(np.float32), shapes['params']
    )
    stats = jax.tree_util.tree_map_with_path(
      lambda path, s: (
        rng.uniform(0.5, 1.5, (2,) + s.shape)
        if path[-1].key == 'var'
        else rng.normal(0, 0.1, (2,) + s.shape)
      ).astype(np.float32),
      shapes['batch_stats'],
    )
    ckpt.save(epoch, {'params': params, 'batch_stats': stats}, {'epoch': epoch, 'history': {}})
  ckpt.close()
  return wd


def test_analyze_falls_back_past_a_truncated_newest_checkpoint(random_two_epoch_workdir, tmp_path):
  wd = random_two_epoch_workdir
  damage.truncate_checkpoint(os.path.join(wd, 'checkpoints', 'mstrnn'), 2)
  proc = _analyze(f'--workdir={wd}', '--epoch=2')
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  err = proc.stderr.strip().splitlines()
  assert len(err) == 1 and 'checkpoints/mstrnn/2: unreadable' in err[0]
  assert 'readable epochs: [1]' in err[0] and '--epoch=1' in err[0]
  proc = _analyze(f'--workdir={wd}', f'--out_dir={tmp_path / "a"}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  warnings = [line for line in proc.stderr.splitlines() if line.startswith('warning:')]
  assert len(warnings) == 1 and 'checkpoints/mstrnn/2' in warnings[0]
  assert _json(str(tmp_path / 'a'), 'analysis.json')['models']['mstrnn']['epoch'] == 1
  assert os.path.isdir(os.path.join(wd, 'checkpoints', 'mstrnn', '2'))  # analysis moves nothing


def test_analyze_usage_error_is_one_line():
  proc = _analyze('--workdir=x', 'stray')
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines() == [
    "error: unexpected arguments ['stray']; every setting is a flag --name=value (list them "
    'with --helpshort).'
  ]


# 9. Time constants.
@pytest.mark.parametrize(
  'values, message',
  [
    (dict(taus=((float('nan'), 100.0),)), 'finite and >= 1'),
    (dict(taus=((2.0, float('inf')),)), 'finite and >= 1'),
    (dict(taus=((0.5, 100.0),)), 'finite and >= 1'),
    (dict(taus=((2.0, 100.0),), model='lrcn'), 'lrcn has no time constants'),
    (dict(**{'model_overrides.taus': (0.9, 3.0)}), '--config.model_overrides.taus'),
  ],
)
def test_bad_time_constants_are_rejected_before_any_work(values, message):
  with pytest.raises(ValueError, match=message) as e:
    plan.validate(_tiny(**values))
  assert '--tau1/--tau2' in str(e.value) or 'model_overrides' in str(e.value)


@pytest.mark.parametrize(
  'field, value', [('clip', 0.0), ('weight_decay', -1e-4), ('b2', 1.0), ('lr_boundaries', (5, 2))]
)
def test_optimiser_values_out_of_range_name_their_flag(field, value):
  with pytest.raises(ValueError, match=rf'^--config\.optim\.{field}: OptimConfig: '):
    plan.validate(_tiny(**{f'optim.{field}': value}))


def test_all_models_with_taus_runs_lrcn_without_them():
  assert plan.validate(_tiny(model='all', taus=((2.0, 100.0),))) == ('mstrnn', 'lrcn', 'mstnn')


# 11. Read-only workdir / output folder.
def test_read_only_folders_are_refused_first(tmp_path, monkeypatch):
  real = os.access
  monkeypatch.setattr(
    os, 'access', lambda p, mode: False if str(tmp_path) in str(p) else real(p, mode)
  )
  with pytest.raises(ValueError, match='--workdir=.*not a writable folder'):
    launch.launch(_tiny(), workdir=str(tmp_path / 'w'), **QUIET)
  with pytest.raises(ValueError, match='--out_dir=.*not a writable folder'):
    analysis.analyze_run(str(tmp_path / 'no_run'), 0, out_dir=str(tmp_path / 'out'))
  assert os.listdir(tmp_path) == []


def test_record_model_picks_the_first_and_names_the_models_held():
  record = {'experiment': {}, 'models': {'mstrnn': {}, 'lrcn': {}}}
  assert workdirs.record_model(record, 'runs/x') == 'mstrnn'
  assert workdirs.record_model(record, 'runs/x', 'lrcn') == 'lrcn'
  with pytest.raises(KeyError, match=r"runs/x: no model 'mstnn'; it holds \['mstrnn', 'lrcn'\]"):
    workdirs.record_model(record, 'runs/x', 'mstnn')
