"""The LOSO driver end to end on the tiny preset (real MSTRNN, 3-subject synth3a)."""
import dataclasses
import glob
import json
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import checkpoint, evaluate, loso, models, presets, train
from mstrnn_jax.data import pipeline


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  exp, model_names = loso.make_experiment('synth3a', 'tiny', model='mstrnn')
  p = loso.plan(exp, model_names)
  workdir = str(tmp_path_factory.mktemp('loso') / 'run')
  out = loso.run_experiment(p, workdir, progress=False, log=lambda s: None)
  return p, workdir, out


def test_results_files_and_summary(tiny_run):
  p, workdir, out = tiny_run
  for name in ('experiment.json', 'results.json', 'results.md', 'metrics.csv',
               'curves_mstrnn.png'):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, 'results.json')) as f:
    res = json.load(f)
  entry = res['models']['mstrnn']
  assert res['final'] and entry['epochs_done'] == p.exp.epochs
  test_acc = np.asarray(entry['history']['test_acc'])
  assert test_acc.shape == (3, p.exp.epochs, 2)          # 3 folds, epochs, action + joint
  assert [r['test_subject'] for r in entry['runs']] == [0, 1, 2]
  want = evaluate.summarize_group(test_acc, ['action'])
  assert entry['summary']['2,100'] == json.loads(json.dumps(want))
  md = open(os.path.join(workdir, 'results.md')).read()
  assert evaluate.fmt(want['mean']['action'], want['se']['action']) in md
  rows = open(os.path.join(workdir, 'metrics.csv')).read().strip().split('\n')
  assert len(rows) == 1 + 3 * p.exp.epochs


def test_checkpoint_reproduces_last_epoch_accuracy(tiny_run):
  """load_run + models.apply on each held-out subject == the history's last-epoch accuracy."""
  p, workdir, out = tiny_run
  run = checkpoint.load_run(workdir)
  assert run.epoch == p.exp.epochs and len(run.runs) == 3
  ds = pipeline.load_dataset(run.dataset, **run.dataset_kwargs)
  last = np.asarray(out['models']['mstrnn']['history']['test_acc'])[:, -1, 0]
  for r, info in enumerate(run.runs):
    idx = np.nonzero(ds.subjects == info['test_subject'])[0]
    x = pipeline.center_crop(jnp.asarray(ds.videos[idx]), ds.crop_size).astype(jnp.float32) / 255
    logits = models.apply(run.model_cfg, jax.tree.map(lambda a: a[r], run.params),
                          jax.tree.map(lambda a: a[r], run.batch_stats), x,
                          jnp.asarray(info['taus'], jnp.float32), train=False).logits
    pred = np.asarray(evaluate.predict(logits['action'][:, -p.exp.voting_steps:]))
    acc = 100.0 * np.mean(pred == ds.labels['action'][idx])
    assert acc == pytest.approx(last[r], abs=1e-6), r


def _read_records(path):
  data = open(path, 'rb').read()
  out, pos = [], 0
  while pos < len(data):
    header = data[pos:pos + 8]
    (n,) = struct.unpack('<Q', header)
    assert struct.unpack('<I', data[pos + 8:pos + 12])[0] == loso._masked_crc(header)
    body = data[pos + 12:pos + 12 + n]
    assert struct.unpack('<I', data[pos + 12 + n:pos + 16 + n])[0] == loso._masked_crc(body)
    out.append(body)
    pos += 16 + n
  return out


def test_event_file_is_tfrecord_framed(tiny_run):
  p, workdir, _ = tiny_run
  (path,) = glob.glob(os.path.join(workdir, 'events', 'mstrnn', 'events.out.tfevents.*'))
  records = _read_records(path)
  assert len(records) == 1 + p.exp.epochs
  assert b'brain.Event:2' in records[0]
  assert b'subject1_tau2_tau100/test_acc_action' in records[1]


def test_crc32c_known_value():
  assert loso.crc32c(b'123456789') == 0xE3069283


@pytest.mark.parametrize('change, message', [
    (dict(taus=((0.0, 100.0),)), 'must be > 0'),
    (dict(batch_size=100), 'larger than the smallest training set'),
    (dict(subjects=(7,)), 'not in synth3a'),
    (dict(voting_steps=50), 'exceeds the video length'),
])
def test_bad_settings_fail_before_compiling(change, message):
  exp = dataclasses.replace(presets.get_experiment('synth3a', 'tiny'), **change)
  with pytest.raises(ValueError, match=message):
    loso.plan(exp, ['mstrnn'])


def test_unknown_dataset_and_unprepared_real_dataset(tmp_path):
  with pytest.raises(ValueError, match='Unknown dataset'):
    loso.make_experiment('ucf101')
  exp, names = loso.make_experiment('cl1ad', model='mstrnn')
  with pytest.raises(Exception, match='cl1ad'):
    loso.plan(exp, names, data_dir=str(tmp_path))


def test_nonfinite_loss_stops_and_keeps_last_results(tmp_path):
  exp = dataclasses.replace(
      presets.get_experiment('synth3a', 'tiny'), epochs=3, subjects=(0,),
      optim=train.OptimConfig(lr_values=(1e-3, 1e38), lr_boundaries=(1,)))
  p = loso.plan(exp, ['mstrnn'])
  workdir = str(tmp_path / 'nan')
  with pytest.raises(loso.NonFiniteLossError, match=r'epoch 2, step \d+'):
    loso.run_experiment(p, workdir, progress=False, log=lambda s: None)
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['models']['mstrnn']['epochs_done'] == 1
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'mstrnn', '1'))
