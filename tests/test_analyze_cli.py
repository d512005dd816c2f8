"""experiments/analyze.py end to end on a workdir in the training engine's format.

The workdir (tests/fake_workdir.py) holds random (different per run) parameters in the engine's
format, so the test needs no training; the analysis results are checked against an independent computation
with `models.apply`.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import analysis
from mstrnn_jax import checkpoint
from mstrnn_jax import evaluate
from mstrnn_jax import models
from mstrnn_jax.data import pipeline
import fake_workdir
import subproc

MODELS = ('mstrnn', 'lrcn')


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('run'))
  return wd, fake_workdir.make(wd, MODELS)


def _reference(wd, plan, m, subject, with_acts):
  """models.apply on the centre-cropped held-out videos of `subject` with that fold's run."""
  run = checkpoint.load_run(wd, m)
  r = [x['run'] for x in run.experiment['runs_by_model'][m] if x['test_subject'] == subject][0]
  params = jax.tree.map(lambda x: x[r], run.params)
  stats = jax.tree.map(lambda x: x[r], run.batch_stats)
  ds = plan.dataset
  idx = np.nonzero(ds.subjects == subject)[0]
  videos = pipeline.to_float(pipeline.center_crop(jnp.asarray(ds.videos[idx]), ds.crop_size))
  apply = jax.jit(models.apply, static_argnums=0, static_argnames=('train', 'return_activations'))
  out = apply(
    run.model_cfg,
    params,
    stats,
    videos,
    jnp.asarray(run.model_cfg.taus, jnp.float32),
    train=False,
    return_activations=with_acts,
  )
  return idx, out, run.model_cfg


def test_analyze_cli_writes_files_and_matches_reference(workdir):
  wd, plan = workdir
  out_dir = os.path.join(wd, 'analysis_out')
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(subproc.ROOT, 'experiments', 'analyze.py'),
      f'--workdir={wd}',
      '--fold=1',
      f'--out_dir={out_dir}',
    ],
    capture_output=True,
    text=True,
    env=subproc.cpu_env(),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'End-point separation from JP-JP-JP' in proc.stdout
  assert '| model | action[1] | action[2] | action[3] | joint |' in proc.stdout
  assert '| true class | videos | MSTRNN | LRCN |' in proc.stdout
  for name in ('pca_trajectories.png', 'early_recognition.png', 'analysis.json', 'analysis.md'):
    assert os.path.getsize(os.path.join(out_dir, name)) > 0
  with open(os.path.join(out_dir, 'analysis.json')) as f:
    res = json.load(f)
  ds = plan.dataset
  names = analysis.video_names(ds.class_names, ds.labels)
  assert res['sequences'] == list(analysis.DEFAULT_SEQUENCES['synth3a'])
  for seq, vids in res['videos'].items():
    assert vids and all(ds.subjects[v] == 1 and names[v] == seq for v in vids)
  assert set(res['models']) == set(MODELS)
  assert (
    res['models']['mstrnn']['layer'] == 'context2' and res['models']['lrcn']['layer'] == 'lstm2'
  )

  for m in MODELS:
    correct, per_fold = [], {seq: [] for seq in res['sequences'][1:]}
    matrix = np.zeros((len(ds.class_names['action']),) * 2, np.int64)
    for subject in range(2):
      idx, out, cfg = _reference(wd, plan, m, subject, with_acts=True)
      correct.append(
        np.argmax(np.asarray(out.logits['action']), -1) == ds.labels['action'][idx][:, None]
      )
      # Each primitive of the voted category (synth3a: 'OH-JP-JP' -> 3 positions).
      voted = np.asarray(evaluate.predict(out.logits['action'][:, -res['voting_steps'] :]))
      class_names = ds.class_names['action']
      true = ds.labels['action'][idx]
      for j in range(3):
        part = res['models'][m]['part_accuracy'][f'action[{j + 1}]']['per_fold'][subject]
        expect = np.mean(
          [
            class_names[p].split('-')[j] == class_names[t].split('-')[j]
            for p, t in zip(voted, true)
          ]
        )
        np.testing.assert_allclose(part, expect)
      joint = res['models'][m]['part_accuracy']['joint']['per_fold'][subject]
      np.testing.assert_allclose(joint, np.mean(voted == true))
      np.add.at(matrix, (true, np.asarray(voted)), 1)
      # End-point separation in the activation space: distance of end points / RMS spread.
      acts = np.asarray(out.activations[analysis.analysis_layer(cfg)]).reshape(
        len(idx), ds.videos.shape[1], -1
      )
      pos = {names[v]: k for k, v in enumerate(idx)}
      sel = acts[[pos[s] for s in res['sequences']]]
      pts = sel.reshape(-1, sel.shape[-1])
      spread = np.sqrt(np.mean(np.sum((pts - pts.mean(0)) ** 2, -1)))
      for k, seq in enumerate(res['sequences'][1:], start=1):
        dist = np.linalg.norm(sel[k, -1] - sel[0, -1]) / spread
        per_fold[seq].append(dist)
        if subject == 1:  # the figure's fold
          np.testing.assert_allclose(
            res['models'][m]['separation'][seq]['activations'], dist, rtol=1e-4
          )
    for seq, values in per_fold.items():
      folds = res['models'][m]['separation'][seq]['folds']
      np.testing.assert_allclose(folds['per_fold'], values, rtol=1e-4)
      np.testing.assert_allclose(folds['mean'], np.mean(values), rtol=1e-4)
    # Early recognition: over the held-out videos of both folds.
    er = res['models'][m]['early_recognition']
    assert er['videos'] == 54 and er['folds'] == 2
    # Confusion over the held-out videos of both folds: the voted reference predictions.
    np.testing.assert_array_equal(res['models'][m]['confusion']['action'], matrix)
    assert matrix.sum() == 54
    np.testing.assert_allclose(er['accuracy']['action'], np.concatenate(correct).mean(0), atol=1e-6)


def test_analyze_run_names_unknown_sequence_and_bad_fold(workdir, tmp_path):
  wd, _ = workdir
  with pytest.raises(ValueError, match="mstrnn_jax/analysis.py: .*has no video named 'XX-JP-JP'"):
    analysis.analyze_run(
      wd, 0, ['JP-JP-JP', 'XX-JP-JP'], models=['lrcn'], out_dir=str(tmp_path / 'bad')
    )
  with pytest.raises(ValueError, match='--fold=2 is not a subject'):
    analysis.analyze_run(wd, 2, models=['lrcn'], out_dir=str(tmp_path / 'bad'))
  assert not (tmp_path / 'bad').exists()
