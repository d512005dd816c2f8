"""Voting-period prediction, accuracies, best-epoch selection and tables (numpy references)."""

import numpy as np
import pytest
import jax.numpy as jnp

from mstrnn_jax import evaluate


def _np_vote(logits):
  """Reference majority vote: per-step argmax, most frequent class, lowest index on ties."""
  *lead, steps, classes = logits.shape
  flat = logits.reshape(-1, steps, classes)
  out = []
  for seq in flat:
    counts = np.bincount(seq.argmax(-1), minlength=classes)
    out.append(int(np.flatnonzero(counts == counts.max())[0]))
  return np.asarray(out).reshape(lead)


def test_vote_matches_reference():
  logits = np.random.default_rng(0).normal(size=(5, 7, 6, 4)).astype(np.float32)
  np.testing.assert_array_equal(evaluate.predict(jnp.asarray(logits), 'vote'), _np_vote(logits))


def test_vote_tie_goes_to_lowest_class_and_differs_from_mean_prob():
  # steps vote 2, 2, 1, 1 -> tie between 1 and 2 -> class 1; mean prob is dominated by class 2.
  lg = np.full((1, 4, 3), -5.0, np.float32)
  lg[0, 0, 2] = lg[0, 1, 2] = 20.0
  lg[0, 2, 1] = lg[0, 3, 1] = 0.0
  assert int(evaluate.predict(jnp.asarray(lg), 'vote')[0]) == 1
  assert int(evaluate.predict(jnp.asarray(lg), 'mean_prob')[0]) == 2


def test_mean_prob_matches_reference():
  logits = np.random.default_rng(1).normal(size=(6, 5, 9)).astype(np.float64)
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  np.testing.assert_array_equal(
    evaluate.predict(jnp.asarray(logits), 'mean_prob'), p.mean(1).argmax(-1)
  )
  with pytest.raises(ValueError, match='vote rule'):
    evaluate.predict(jnp.asarray(logits), 'median')


def test_correct_flags_uses_last_steps_and_joint():
  heads = (('ado', 3), ('action', 2))
  b, t = 3, 6
  ado = np.zeros((b, t, 3), np.float32)
  action = np.zeros((b, t, 2), np.float32)
  ado[:, :3, 0] = 9.0  # early steps say class 0 ...
  ado[:, 3:, 2] = 9.0  # ... the voting period (last 3) says class 2
  action[:, :, 1] = 9.0
  labels = np.array([[2, 1], [2, 0], [0, 1]], np.int32)
  flags = np.asarray(
    evaluate.correct_flags(
      {'ado': jnp.asarray(ado), 'action': jnp.asarray(action)},
      jnp.asarray(labels),
      heads,
      voting_steps=3,
    )
  )
  np.testing.assert_array_equal(flags, [[1, 1, 1], [1, 0, 0], [0, 1, 0]])


def test_accuracies_ignore_padding():
  flags = np.array([[[1, 1], [0, 0], [1, 1]], [[0, 0], [1, 1], [1, 1]]])
  mask = np.array([[True, True, False], [True, True, True]])
  np.testing.assert_allclose(evaluate.accuracies(flags, mask), [[50, 50], [200 / 3, 200 / 3]])


def test_best_epoch_is_earliest_max_of_joint():
  acc = np.zeros((2, 4, 2))
  acc[0, :, 1] = [10, 30, 30, 20]
  acc[1, :, 1] = [50, 10, 20, 50]
  acc[0, :, 0] = [90, 0, 0, 0]  # a head's own best epoch does not matter
  np.testing.assert_array_equal(evaluate.select_best_epochs(acc), [1, 0])


def test_mean_se_known_values():
  m, s = evaluate.mean_se([1.0, 2.0, 3.0])
  assert m == pytest.approx(2.0)
  assert s == pytest.approx(1.0 / np.sqrt(3.0))
  assert evaluate.mean_se([4.0]) == (4.0, 0.0)
  assert evaluate.fmt(89.2961, 4.6049) == '89.30±4.60'


def test_pool_mean_se_equals_mean_se_of_the_union():
  rng = np.random.default_rng(0)
  groups = [rng.normal(loc, 5.0, size=n) for loc, n in ((3.0, 10), (-2.0, 10), (0.5, 7), (9.0, 1))]
  printed = [(*evaluate.mean_se(g), g.size) for g in groups]
  np.testing.assert_allclose(
    evaluate.pool_mean_se(printed), evaluate.mean_se(np.concatenate(groups)), rtol=1e-12
  )
  assert evaluate.pool_mean_se([(4.0, 0.0, 1)]) == (4.0, 0.0)
  with pytest.raises(ValueError, match='at least one value'):
    evaluate.pool_mean_se([(1.0, 0.5, 0)])


def test_summarize_group_reports_heads_at_joint_best_epoch():
  # 2 folds, 3 epochs, heads (a, b) + joint.
  acc = np.array(
    [[[50, 40, 30], [60, 70, 55], [90, 10, 10]], [[80, 80, 80], [20, 20, 20], [30, 30, 30]]], float
  )
  s = evaluate.summarize_group(acc, ['a', 'b'])
  assert s['best_epoch'] == [2, 1]
  assert s['per_fold']['a'] == [60, 80]
  assert s['mean']['b'] == pytest.approx(75.0)
  assert s['se']['joint'] == pytest.approx(np.std([55, 80], ddof=1) / np.sqrt(2))


def test_tables_layout():
  s = evaluate.summarize_group(
    np.array([[[50.0, 40.0, 30.0]], [[70.0, 60.0, 50.0]]]), ['ado', 'action']
  )
  heads = (('ado', 4), ('action', 9))
  table = evaluate.model_table({'mstrnn': s, 'lrcn': s}, heads)
  assert '| Ado | Accuracy | 60.00±10.00 | 60.00±10.00 |' in table
  assert '| | Chance level | 25.00 |' in table and '11.11' in table
  assert '| Joint | Accuracy | 40.00±10.00 |' in table and table.count('Chance level') == 2
  sweep = evaluate.sweep_table({'2,50': s, '2,100': s}, [2.0], [50.0, 100.0], heads)
  assert '| Action | 2 | 50.00±10.00 | 50.00±10.00 |' in sweep
  # config.taus may list pairs that do not fill the tau1 x tau2 grid.
  pairs = evaluate.sweep_table({'1.04,22': s, '2,100': s}, [1.04, 2.0], [22.0, 100.0], heads)
  assert '| Action | 1.04 | 50.00±10.00 | - |' in pairs
  assert '| | 2 | - | 50.00±10.00 |' in pairs


def test_tau_key_is_the_key_of_summaries():
  assert evaluate.tau_key((2.0, 100.0)) == '2,100' and evaluate.tau_key((1.04, 22)) == '1.04,22'
  assert evaluate.tau_key(()) == ''  # LRCN: no time constants


def test_selections_side_by_side():
  # 2 folds, 3 epochs, one head + joint; validation picks epoch 1 in fold 0, epoch 3 in fold 1.
  test = np.array([[[10, 10], [50, 50], [30, 30]], [[20, 20], [40, 40], [60, 60]]], float)
  val = np.array([[[90, 90], [10, 10], [10, 10]], [[0, 0], [10, 10], [20, 20]]], float)
  s = evaluate.summarize_group(test, ['a'], val)
  sel = s['selections']
  assert list(sel) == ['test_best', 'validation', 'last']
  assert s['best_epoch'] == sel['test_best']['best_epoch'] == [2, 3]
  assert sel['validation']['best_epoch'] == [1, 3]
  assert sel['validation']['per_fold']['joint'] == [10, 60]
  assert sel['last']['per_fold']['a'] == [30, 60]
  assert 'validation' not in evaluate.summarize_group(test, ['a'])['selections']
  table = evaluate.selection_table({'mstrnn': s, 'lrcn': s})
  assert '| epoch chosen on validation subjects | 35.00±25.00 | 35.00±25.00 |' in table
  assert '| last epoch | 45.00±15.00 |' in table


def test_validation_subjects_deterministic_and_from_the_training_subjects():
  train = [0, 1, 2, 4, 5, 6, 7, 8]
  a = evaluate.validation_subjects(train, 2, seed=0, fold=3)
  assert a == evaluate.validation_subjects(train, 2, seed=0, fold=3)
  assert len(set(a)) == 2 and set(a) <= set(train)
  assert evaluate.validation_subjects(train, 0, seed=0, fold=3) == ()
  picks = {evaluate.validation_subjects(train, 2, seed=s, fold=3) for s in range(6)}
  assert len(picks) > 1
  with pytest.raises(ValueError, match='validation_subjects'):
    evaluate.validation_subjects([1, 2], 2, seed=0, fold=0)


def test_training_table_lists_epochs_and_the_last_two_five_epoch_means():
  rising = [float(e) for e in range(1, 21)]  # 1, 2, ..., 20
  flat = [50.0] * 20
  table = evaluate.training_table({'mstrnn': rising, 'lrcn': flat}, points=4)
  assert table.splitlines()[0] == '| Epoch | MSTRNN | LRCN |'
  assert '| 5 | 5.0 | 50.0 |' in table and '| 20 | 20.0 | 50.0 |' in table
  assert '| mean of epochs 16-20 | 18.0 | 50.0 |' in table
  assert '| mean of epochs 11-15 | 13.0 | 50.0 |' in table
  assert '| change (plateau: near 0) | +5.0 | +0.0 |' in table
  tiny_dip = evaluate.training_table({'mstrnn': [50.0] * 19 + [49.9]})
  assert '| change (plateau: near 0) | +0.0 |' in tiny_dip
  short = evaluate.training_table({'mstrnn': [10.0, 20.0, 30.0]})
  assert '| 3 | 30.0 |' in short and 'change' not in short  # under 10 epochs: no means
