"""experiments/run.py as a user runs it: flag errors, dry run, SIGKILL + --resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import subproc

ROOT = subproc.ROOT
RUN = [sys.executable, os.path.join(ROOT, 'experiments', 'run.py')]
ENV = subproc.cpu_env()


def _run(*args, timeout=300, env=ENV):
  return subprocess.run(
    RUN + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
  )


@pytest.mark.parametrize(
  'args, message',
  [
    (['--tau1=-1', '--tau2=100'], 'time constants must be finite and >= 1'),
    (['--batch_size=1000', '--preset=tiny'], 'larger than the smallest training set'),
    (['--tau1=2'], 'give both --tau1 and --tau2'),
    (
      ['--config.optim.lr_boundaries=(5,1)'],
      '--config.optim.lr_boundaries: OptimConfig: 2 learning rates need 1 epoch boundaries',
    ),
    (['--config.model_overrides.conv_impl=fft'], "'fft' is not a ConvImpl"),
    (['--dataset=ucf101'], 'ucf101'),
  ],
)
def test_bad_flags_give_one_clear_error(args, message):
  proc = _run(*args)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_unprepared_real_dataset(tmp_path):
  proc = _run('--dataset=cl1ad', '--tau1=2', '--tau2=100', f'--data_dir={tmp_path}')
  assert proc.returncode != 0 and 'error:' in proc.stderr
  assert 'cl1ad' in proc.stderr.lower() and 'Traceback' not in proc.stderr


def test_dry_run_summarises_without_training(tmp_path):
  proc = _run(
    '--dry_run',
    '--preset=tiny',
    '--model=all',
    f'--workdir={tmp_path / "w"}',
    '--config.width_scale=0.25',
    '--config.voting_steps=2',
    '--config.optim.weight_decay=0.001',
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  for word in (
    'MSTRNN',
    'MSTNN',
    'LRCN',
    'parameters',
    'GFLOP',
    'synth3a',
    '"width_scale": 0.25',
    '"voting_steps": 2',
    '"weight_decay": 0.001',
    'weight decay 0.001',
    'voting steps 2',
  ):
    assert word in proc.stdout
  assert not os.path.exists(tmp_path / 'w')


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_uninterrupted_run(tmp_path):
  args = ['--preset=tiny', '--epochs=4', '--checkpoint_every=1', '--seed=3']
  full = _run(*args, f'--workdir={tmp_path / "full"}')
  assert full.returncode == 0, full.stderr[-3000:]

  killed_dir = tmp_path / 'killed'
  proc = subprocess.Popen(
    RUN + args + [f'--workdir={killed_dir}'],
    cwd=ROOT,
    env=ENV,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  ckpt = killed_dir / 'checkpoints' / 'mstrnn'
  deadline = time.time() + 240
  while time.time() < deadline and not (ckpt / '2').is_dir() and proc.poll() is None:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert (ckpt / '2').is_dir(), 'the run never wrote its epoch-2 checkpoint'
  with open(killed_dir / 'results.json') as f:
    assert not json.load(f)['final']

  resumed = _run(*args, f'--workdir={killed_dir}', '--resume')
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  with open(tmp_path / 'full' / 'results.json') as f:
    want = json.load(f)
  with open(killed_dir / 'results.json') as f:
    got = json.load(f)
  assert got['final']
  for key in ('history', 'summary', 'runs', 'epochs_done'):
    assert got['models']['mstrnn'][key] == want['models']['mstrnn'][key], key
  assert got['tables'] == want['tables']


@pytest.mark.slow
def test_resume_on_two_devices_continues_a_one_device_run(tmp_path):
  """A run checkpointed on 1 device (3 runs, unpadded) resumes on 2 simulated devices (padded
  to 4): the checkpoint is read, not moved aside as damaged, and the resumed epoch matches the
  uninterrupted run's."""
  args = ['--preset=tiny', '--epochs=3', '--checkpoint_every=1', '--seed=3']
  full = _run(*args, f'--workdir={tmp_path / "full"}')
  assert full.returncode == 0, full.stderr[-3000:]
  moved = tmp_path / 'moved'
  shutil.copytree(tmp_path / 'full', moved)
  shutil.rmtree(moved / 'checkpoints' / 'mstrnn' / '3')  # the newest is now epoch 2
  resumed = _run(*args, f'--workdir={moved}', '--resume', env=subproc.cpu_env(2))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert '2 device(s)' in resumed.stdout + resumed.stderr
  assert 'damaged' not in resumed.stderr and not (moved / 'checkpoints' / 'mstrnn.damaged').exists()
  got, want = (
    json.loads((w / 'results.json').read_text())['models']['mstrnn']
    for w in (moved, tmp_path / 'full')
  )
  assert got['epochs_done'] == want['epochs_done'] == 3
  np.testing.assert_allclose(got['history']['train_loss'], want['history']['train_loss'], rtol=2e-5)
