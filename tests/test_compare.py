"""mstrnn_jax/compare.py and experiments/compare.py: workdirs side by side."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mstrnn_jax import compare, evaluate, plots
import subproc

ROOT = subproc.ROOT


def _workdir(path, width, train, test, val, test_subjects=None, heads=('action',), **experiment):
  """A results.json of one MSTRNN, one run per fold: histories [folds, epochs, len(heads) + 1]
  (the heads, joint last); without ``test_subjects`` the runs carry none (older versions);
  ``experiment`` adds config fields (e.g. seed=1)."""
  test, val = np.asarray(test, float), np.asarray(val, float)
  summary = evaluate.summarize_group(test, list(heads), val)
  runs = [{'run': i, 'taus': [2.0, 100.0]} for i in range(test.shape[0])]
  for r, s in zip(runs, test_subjects or ()):
    r['test_subject'] = s
  res = {
    'experiment': {'model': 'mstrnn', 'width_scale': width, 'optim': {'clip': 12.0}, **experiment},
    'models': {
      'mstrnn': {
        'runs': runs,
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


def test_paired_differences_match_folds_by_test_subject(tmp_path):
  # Reference: subjects 3, 5, 7 at (last epoch) 50, 60, 70.  Other: subjects 7, 3, 9 at 90, 40, 0
  # (subject 9 has no partner).  Paired over 3 and 7: 40 - 50 = -10, 90 - 70 = +20.
  ref = [[[50, 50]], [[60, 60]], [[70, 70]]]
  other = [[[90, 90]], [[40, 40]], [[0, 0]]]
  _workdir(tmp_path / 'ref', 0.125, ref, ref, ref, test_subjects=[3, 5, 7])
  _workdir(tmp_path / 'other', 0.25, other, other, other, test_subjects=[7, 3, 9])
  _workdir(tmp_path / 'apart', 0.5, ref, ref, ref, test_subjects=[0, 1, 2])
  rows = compare.rows([str(tmp_path / w) for w in ('ref', 'other', 'apart')])
  p = compare.paired(rows[1], rows[0])
  assert p['folds'] == 2
  for sel in evaluate.SELECTIONS:  # one epoch: every selection picks it
    assert p[sel]['mean'] == pytest.approx(5.0)
    assert p[sel]['se'] == pytest.approx(15.0)  # std(ddof=1) of (-10, 20) is 21.2; / sqrt(2)
    assert p[sel]['sd'] == pytest.approx(30 / np.sqrt(2))
    assert p[sel]['wins'] == 1
  assert compare.paired(rows[2], rows[0]) == {'folds': 0}
  text = compare.paired_table(rows)
  assert '| other | mstrnn | 2,100 | 2 | +5.00±15.00 (SD 21.2; 1 of 2) |' in text
  assert '| apart | mstrnn | 2,100 | 0 | - | - | - |' in text
  assert compare.paired_table(rows[:1]) == ''


def test_window_gives_held_out_mean_gap_and_plateau_change(tmp_path):
  # Two folds, four epochs, window 2.  Fold 0: held-out 10, 20, 30, 50 -> last 2 mean 40, the
  # two before 15 (change +25); training 50, 60, 70, 90 -> 80 (gap 40), before 55 (+25).
  # Fold 1: held-out 60 throughout (change 0); training 100 throughout (gap 40, change 0).
  test = [[[x, x] for x in (10, 20, 30, 50)], [[60, 60]] * 4]
  train = [[[x, x] for x in (50, 60, 70, 90)], [[100, 100]] * 4]
  _workdir(tmp_path / 'a', 0.125, train, test, test)
  (r,) = compare.rows([str(tmp_path / 'a')], window=2)
  assert r['per_fold:window'] == pytest.approx([40, 60])
  assert r['per_fold:gap'] == pytest.approx([40, 40])
  assert r['test:window'] == pytest.approx((50, 10))  # SE of (40, 60): 14.1 / sqrt(2)
  assert r['change'] == pytest.approx((12.5, 12.5))
  assert r['train_change'] == pytest.approx((12.5, 12.5))
  assert (
    '| 50.00±10.00 | 40.00±0.00 | - | +12.50±12.50 / +12.50±12.50 | no: training rising, held-out rising |'
    in compare.table([r])
  )
  # Section 0za's criterion: training +12.5 is not < 2, so no plateau; flat curves meet it.
  assert r['plateau'] is False
  flat = [[[60, 60]] * 4, [[70, 70]] * 4]
  _workdir(tmp_path / 'flat', 0.125, flat, test, test)
  assert compare.rows([str(tmp_path / 'flat')], window=2)[0]['plateau'] is False  # 12.5 > SE
  _workdir(tmp_path / 'still', 0.125, flat, flat, flat)  # held-out change 0±0: not < one SE
  assert compare.rows([str(tmp_path / 'still')], window=2)[0]['plateau'] is False
  wobble = [[[60, 60], [62, 62], [61, 61], [61, 61]], [[70, 70], [70, 70], [70, 70], [72, 72]]]
  _workdir(tmp_path / 'wobble', 0.125, flat, wobble, wobble)  # change (0, +1) -> +0.5±0.5
  (w,) = compare.rows([str(tmp_path / 'wobble')], window=2)
  assert w['change'] == pytest.approx((0.5, 0.5)) and w['plateau'] is False  # not < one SE
  assert compare.plateau_cell(w) == 'no: held-out rising'
  dip = [[[62, 62], [62, 62], [61, 61], [61, 61]], [[72, 72], [72, 72], [70, 70], [70, 70]]]
  _workdir(tmp_path / 'dip', 0.125, flat, dip, dip)  # change (-1, -2) -> -1.5±0.5: past its rise
  (d,) = compare.rows([str(tmp_path / 'dip')], window=2)
  assert d['plateau'] is False and compare.plateau_cell(d) == 'no: held-out falling'
  assert compare.plateau_cell({**d, 'change': (-0.2, 0.5)}) == 'yes'
  assert r['curve:test'] == pytest.approx([35, 40, 45, 55])  # mean over folds per epoch
  assert r['curve:train'] == pytest.approx([75, 80, 85, 95])
  fig = plots.compare_curves([r, r], compare.label, 'a title')
  assert len(fig.axes[0].lines) == 4  # held-out and training per row
  assert fig.axes[0].lines[1].get_label() == 'a mstrnn: training'
  assert fig.axes[0].get_title() == 'a title'
  assert compare.modes([r, r]) == '-'  # the fixture names no mode: once

  (r,) = compare.rows([str(tmp_path / 'a')], window=3)  # 4 epochs < 2 windows: no change
  assert 'change' not in r and r['per_fold:window'] == pytest.approx([100 / 3, 60])
  assert r['plateau'] is None
  assert compare.table([r]).rstrip().endswith('| - | - |')
  with pytest.raises(ValueError, match='--window=0'):
    compare.rows([str(tmp_path / 'a')], window=0)


def test_eval_stats_reads_another_batch_norm_mode(tmp_path):
  # population (the run's first mode): 20 then 40 in both folds; subject: 70 then 90 in fold 0,
  # 50 then 60 in fold 1.  Validation mirrors the test so both selections pick epoch 2.
  pop = [[[20, 20], [40, 40]]] * 2
  subj = [[[70, 70], [90, 90]], [[50, 50], [60, 60]]]
  _workdir(tmp_path / 'a', 0.125, pop, pop, pop, test_subjects=[0, 1])
  path = tmp_path / 'a' / 'results.json'
  res = json.loads(path.read_text())
  entry = res['models']['mstrnn']
  res['experiment']['eval_stats'] = ['population', 'subject']
  entry['summary']['2,100']['eval_stats'] = {
    'population': evaluate.summarize_group(np.array(pop, float), ['action'], np.array(pop, float)),
    'subject': evaluate.summarize_group(np.array(subj, float), ['action'], np.array(subj, float)),
  }
  entry['history'].update(test_acc_subject=subj, val_acc_subject=subj)
  path.write_text(json.dumps(res))
  (first,) = compare.rows([str(tmp_path / 'a')], window=1)
  (other,) = compare.rows([str(tmp_path / 'a')], window=1, eval_stats='subject')
  assert first['eval_stats'] == 'population' and other['eval_stats'] == 'subject'
  assert compare.modes([first, other, first]) == 'population, subject'
  assert first['test:last'][0] == pytest.approx(40) and first['val_best'] == pytest.approx(40)
  assert other['test:last'][0] == pytest.approx(75) and other['val_best'] == pytest.approx(75)
  assert other['per_fold:window'] == pytest.approx([90, 60])
  assert other['per_fold:gap'] == pytest.approx([40 - 90, 40 - 60])  # training is pop's
  with pytest.raises(ValueError, match=r'a: no evaluation with --eval_stats=running.*population'):
    compare.rows([str(tmp_path / 'a')], eval_stats='running')


def test_head_reads_one_category_at_the_epochs_the_joint_selects(tmp_path):
  # Columns (ado, action, joint).  Fold 0: joint peaks at epoch 1 (ado 90 there, 20 at the last
  # epoch); fold 1: joint peaks at epoch 2, the last (ado 60).  Training ado 80 then 100.
  a = [[[90, 10, 50], [20, 80, 40]], [[30, 30, 10], [60, 70, 60]]]
  b = [[[70, 10, 50], [40, 80, 40]], [[30, 30, 10], [20, 70, 60]]]
  train = [[[80, 0, 0], [100, 0, 0]]] * 2
  val = [[[90, 10, 50], [95, 80, 40]], [[30, 30, 10], [60, 70, 60]]]  # ado's own best: 95
  for name, test in (('a', a), ('b', b)):
    _workdir(
      tmp_path / name, 0.125, train, test, val, test_subjects=[0, 1], heads=('ado', 'action')
    )
  workdirs = [str(tmp_path / 'a'), str(tmp_path / 'b')]
  ra, rb = compare.rows(workdirs, window=1, head='ado')
  assert ra['head'] == 'ado'
  assert ra['per_fold:test_best'] == [90, 60]  # ado at the best joint epoch, not ado's best
  assert ra['test:last'][0] == pytest.approx(40)  # (20 + 60) / 2
  assert ra['val_best'] == pytest.approx(75)  # at the joint-selected epochs: (90 + 60) / 2
  assert ra['val_last'] == pytest.approx(77.5)  # (95 + 60) / 2
  assert ra['train_acc'] == pytest.approx(90)
  p = compare.paired(rb, ra)  # b - a: fold 0 -20 at best, +20 last; fold 1 -40 both
  assert p['test_best']['mean'] == pytest.approx(-30) and p['last']['mean'] == pytest.approx(-10)
  assert compare.table([ra, rb]).startswith("Accuracy of head 'ado' (epochs selected on the joint")
  assert 'Paired differences, ado accuracy: each row minus' in compare.paired_table([ra, rb])
  (joint,) = compare.rows(workdirs[:1], window=1)
  assert joint['head'] == 'joint' and joint['per_fold:test_best'] == [50, 60]
  assert compare.table([joint]).startswith('| workdir |')
  with pytest.raises(ValueError, match=r"a: no head 'modifier'; this run has ado, action, joint"):
    compare.rows(workdirs[:1], head='modifier')
  fig = plots.compare_curves([ra], compare.label, 't', compare.accuracy_name([ra]))
  assert fig.axes[0].get_ylabel() == 'ado accuracy, mean over folds (%)'


def test_interaction_is_the_difference_of_paired_differences_by_subject(tmp_path):
  # Accuracy per subject (one epoch); A1 - A0 = (50 - 80, 60 - 70, 40 - 90) = (-30, -10, -50)
  # on subjects (1, 2, 3) and B1 - B0 = (60 - 60, 40 - 50) = (0, -10) on subjects (1, 2); B
  # lacks subject 3, so the interaction is over subjects 1 and 2: (-30 - 0, -10 + 10) = (-30, 0).
  runs = {
    'a0': ([80, 70, 90], [1, 2, 3]),
    'a1': ([40, 50, 60], [3, 1, 2]),
    'b0': ([60, 50], [1, 2]),
    'b1': ([40, 60], [2, 1]),
  }
  for name, (acc, subjects) in runs.items():
    h = [[[a, a]] for a in acc]
    _workdir(tmp_path / name, 0.125, h, h, h, test_subjects=subjects)
  rows = compare.rows([str(tmp_path / n) for n in runs])
  p = compare.interaction(*rows)
  assert p['folds'] == 2
  for key in evaluate.SELECTIONS + ('window',):
    assert p[key]['mean'] == pytest.approx(-15) and p[key]['se'] == pytest.approx(15)
    assert p[key]['wins'] == 1
  assert p['gap']['mean'] == pytest.approx(0)  # training equals held-out in every row
  text = compare.interaction_table(rows)
  assert '(a1 mstrnn - a0 mstrnn) - (b1 mstrnn - b0 mstrnn)' in text
  assert '| 2 | -15.00±15.00 (SD 21.2; 1 of 2) |' in text
  assert 'verdict (last epoch and last 10 epochs, 1 SE) |' in text
  assert text.rstrip().endswith('| alike |')  # -15 is not beyond its SE of 15
  with pytest.raises(ValueError, match='exactly 4 rows'):
    compare.interaction_table(rows[:3])


def test_interaction_verdict_needs_one_sign_at_the_last_epoch_and_the_window():
  def p(last, window):
    return {'last': {'mean': last, 'se': 2.0}, 'window': {'mean': window, 'se': 2.0}}

  assert compare.interaction_verdict(p(-5, -3)) == 'negative'
  assert compare.interaction_verdict(p(5, 2.5)) == 'positive'
  assert compare.interaction_verdict(p(-1, 2)) == 'alike'
  assert compare.interaction_verdict(p(-5, -1)) == 'mixed'
  assert compare.interaction_verdict(p(-5, 5)) == 'mixed'
  assert compare.interaction_verdict({'validation': {'mean': -9, 'se': 1}}) == '-'


def test_pooled_rows_pair_folds_of_the_same_seed_and_subject(tmp_path):
  # Model A (width 0.125) and B (width 0.25) at seeds 0 and 1 on subjects 1, 2 (one epoch).
  # B's seed-1 workdir lists its subjects in the other order.  B - A per (seed, subject):
  # seed 0: 60 - 50, 20 - 40; seed 1: 90 - 70, 40 - 80  ->  (+10, -20, +20, -40), mean -7.5.
  runs = {
    'a0': (0.125, 0, [50, 40], [1, 2]),
    'a1': (0.125, 1, [70, 80], [1, 2]),
    'b0': (0.25, 0, [60, 20], [1, 2]),
    'b1': (0.25, 1, [40, 90], [2, 1]),
  }
  for name, (width, seed, acc, subjects) in runs.items():
    h = [[[a, a]] for a in acc]
    _workdir(tmp_path / name, width, h, h, h, test_subjects=subjects, seed=seed)
  w = lambda *names: ','.join(str(tmp_path / n) for n in names)  # noqa: E731
  a, b = compare.rows([w('a0', 'a1'), w('b0', 'b1')])
  assert a['folds'] == 4 and a['test_subjects'][2] == 'data -, init 1, batches from init: 1'
  assert a['per_fold:last'] == [50, 40, 70, 80] and a['test:last'][0] == pytest.approx(60)
  assert a['settings'] == {'seed': '0|1', 'width_scale': '0.125'}
  assert a['curve:test'] == pytest.approx([60])
  p = compare.paired(b, a)
  assert p['folds'] == 4 and p['last']['mean'] == pytest.approx(-7.5)
  assert p['last']['wins'] == 2
  assert '| a0,a1 | seed=0|1, width_scale=0.125 | mstrnn |' in compare.table([a, b])
  single = compare.rows([w('b0')])[0]  # keyed by subject alone: no pairs with a pooled row
  assert compare.paired(single, a) == {'folds': 0}
  with pytest.raises(ValueError, match='share seeds'):
    compare.rows([w('a0', 'a0')])
  with pytest.raises(ValueError, match='differ in width_scale besides the seeds'):
    compare.rows([w('a0', 'b1')])
  longer = [[[50, 50], [60, 60]], [[40, 40], [30, 30]]]
  _workdir(tmp_path / 'a2', 0.125, longer, longer, longer, test_subjects=[1, 2], seed=2)
  with pytest.raises(ValueError, match='differ in epochs done'):
    compare.rows([w('a0', 'a2')])


def test_a_field_added_after_a_run_counts_at_its_default(tmp_path):
  # 'old' was written before data.synth3a.clips_per_primitive existed: it pools with a newer run
  # at the default (1) and differs from one at 2, shown as the default's value, not '-'.
  h = [[[50, 50]], [[60, 60]]]
  synth = lambda **kw: {'synth3a': {'seed': 0, **kw}}  # noqa: E731
  common = dict(test_subjects=[1, 2], dataset='synth3a', preset='quick')
  _workdir(tmp_path / 'old', 0.125, h, h, h, data=synth(), **common)
  _workdir(tmp_path / 'new', 0.125, h, h, h, data=synth(clips_per_primitive=1), seed=1, **common)
  _workdir(tmp_path / 'k2', 0.125, h, h, h, data=synth(clips_per_primitive=2), seed=2, **common)
  w = lambda *names: ','.join(str(tmp_path / n) for n in names)  # noqa: E731
  assert compare.rows([w('old', 'new')])[0]['folds'] == 4
  old, k2 = compare.rows([w('old'), w('k2')])
  assert old['settings'] == {'data.synth3a.clips_per_primitive': '1', 'seed': '0'}
  assert k2['settings'] == {'data.synth3a.clips_per_primitive': '2', 'seed': '2'}
  with pytest.raises(ValueError, match='differ in data.synth3a.clips_per_primitive besides'):
    compare.rows([w('old', 'k2')])
  # A field whose default changed when it was added reads as the behaviour the run had
  # (experiment_configs.ADDED_FIELDS): synthcl2 runs from before count_timing used equal_total.
  cl2 = dict(test_subjects=[1, 2], dataset='synthcl2', preset='quick')
  _workdir(tmp_path / 'cl2_old', 0.125, h, h, h, data={'synthcl2': {'seed': 0}}, **cl2)
  new_cl2 = {'synthcl2': {'seed': 0, 'count_timing': 'per_stroke'}}
  _workdir(tmp_path / 'cl2_new', 0.125, h, h, h, data=new_cl2, **cl2)
  old, new = compare.rows([w('cl2_old'), w('cl2_new')])
  assert old['settings'] == {'data.synthcl2.count_timing': '"equal_total"'}
  assert new['settings'] == {'data.synthcl2.count_timing': '"per_stroke"'}


def test_a_stored_results_file_reads_as_its_workdir(tmp_path):
  # A gzipped copy of a workdir's results.json (<name>.json.gz) gives the same row,
  # labelled with the file's name.
  test = [[[10, 10], [50, 50]], [[40, 40], [20, 20]]]
  _workdir(tmp_path / 'H1_mstrnn', 0.125, test, test, test)
  stored = tmp_path / 'runs' / 'H1_mstrnn.json.gz'
  stored.parent.mkdir()
  with gzip.open(stored, 'wt') as f:
    f.write((tmp_path / 'H1_mstrnn' / 'results.json').read_text())
  from_dir, from_file = compare.rows([str(tmp_path / 'H1_mstrnn')] + [str(stored)])
  assert compare.label(from_dir) == compare.label(from_file) == 'H1_mstrnn mstrnn'
  for key in ('test:test_best', 'test:last', 'val_best', 'train_acc'):
    assert from_file[key] == from_dir[key]
  with pytest.raises(FileNotFoundError, match='missing.json.gz: no such results file'):
    compare.load(str(tmp_path / 'missing.json.gz'))
  # Another JSON file (e.g. analyze.py's analysis.json kept beside it) is named, not a KeyError.
  other = tmp_path / 'runs' / 'H1_mstrnn_analysis.json.gz'
  with gzip.open(other, 'wt') as f:
    f.write('{"workdir": "runs/H1_mstrnn", "models": {}}')
  with pytest.raises(ValueError, match="H1_mstrnn_analysis.json.gz: not a run's results.json"):
    compare.load(str(other))


def test_cli_refuses_to_overwrite_and_names_missing_results(tmp_path):
  test = [[[10, 10]], [[20, 20]]]
  _workdir(tmp_path / 'a', 0.125, test, test, test)
  (tmp_path / 'out.md').write_text('keep')
  run = lambda *args: subprocess.run(
    [sys.executable, os.path.join(ROOT, 'experiments', 'compare.py'), *args],
    capture_output=True,
    text=True,
    env=subproc.cpu_env(),
  )
  proc = run(str(tmp_path / 'a'), f'--out={tmp_path / "out.md"}')
  assert proc.returncode != 0 and 'out.md exists' in proc.stderr
  assert (tmp_path / 'out.md').read_text() == 'keep'
  proc = run(str(tmp_path / 'missing'))
  assert proc.returncode != 0 and 'no results yet' in proc.stderr
  proc = run(str(tmp_path / 'a'), f'--out={tmp_path / "new.md"}')
  assert proc.returncode == 0, proc.stderr
  assert json.loads((tmp_path / 'new.json').read_text())[0]['model'] == 'mstrnn'
  assert (tmp_path / 'new.png').read_bytes()[:4] == b'\x89PNG'
  (tmp_path / 'fig.png').write_text('keep')  # any of the three outputs blocks --out
  proc = run(str(tmp_path / 'a'), f'--out={tmp_path / "fig.md"}')
  assert proc.returncode != 0 and 'fig.png exists' in proc.stderr
  assert not (tmp_path / 'fig.md').exists()
  proc = run(str(tmp_path / 'a'), '--interaction')
  assert proc.returncode != 0 and 'needs exactly 4 rows' in proc.stderr
  proc = run(*[str(tmp_path / 'a')] * 4, '--interaction', '--window=1')
  assert proc.returncode == 0, proc.stderr
  assert 'Interaction, joint accuracy' in proc.stdout and 'last 1 epochs' in proc.stdout


@pytest.mark.parametrize(
  'last, val, expected, last_only',
  [
    ([10, 12, 14], [20, 22, 24], 'b mstrnn ahead', 'b mstrnn ahead'),  # +12±1.2, +22±1.2
    ([-10, -12, -14], [-20, -22, -24], 'a mstrnn ahead', 'a mstrnn ahead'),
    ([-1, 1, 0], [2, -2, 0], 'level', 'level'),  # 0±0.6 and 0±1.2
    ([10, 12, 14], [-1, 1, 0], 'mixed', 'b mstrnn ahead'),  # ahead at the last epoch only
    ([10, 12, 14], [-20, -22, -24], 'mixed', 'b mstrnn ahead'),  # opposite signs
  ],
)
def test_verdict_applies_the_reading_rule_at_validation_and_last_epoch(
  tmp_path, last, val, expected, last_only
):
  # Two epochs: validation accuracy 90 then 0 selects the first, the last selection the second.
  ref = [[[50, 50], [50, 50]]] * 3
  other = [[[50 + v, 50 + v], [50 + x, 50 + x]] for v, x in zip(val, last)]
  peek = [[[90, 90], [0, 0]]] * 3
  _workdir(tmp_path / 'a', 0.125, ref, ref, peek, test_subjects=[1, 2, 3])
  _workdir(tmp_path / 'b', 0.25, ref, other, peek, test_subjects=[1, 2, 3])
  a, b = compare.rows([str(tmp_path / 'a'), str(tmp_path / 'b')])
  p = compare.paired(b, a)
  assert p['validation']['mean'] == pytest.approx(np.mean(val))
  assert p['last']['mean'] == pytest.approx(np.mean(last))
  assert compare.verdict(p, b, a) == expected
  assert compare.paired_table([a, b]).rstrip().endswith(f'| {expected} |')
  # Without validation subjects the rule reads the last epoch alone; with neither, nothing.
  assert compare.verdict({'folds': 3, 'last': p['last']}, b, a) == last_only
  assert compare.verdict({'folds': 0}, b, a) == '-'
  first, second = compare.with_paired([a, b])
  assert 'paired' not in first and 'paired' not in a and 'paired' not in b
  assert second['paired']['verdict'] == expected and second['paired']['reference'] == 'a mstrnn'
  assert second['paired']['last']['mean'] == pytest.approx(np.mean(last))
  json.dumps(second)  # --out writes these rows as JSON
