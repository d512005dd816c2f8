"""Tests of mstrnn_jax.analysis: PCA against an SVD reference, separation, early recognition, figures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import analysis, plots


def _svd_reference(x, k):
  """Textbook PCA by SVD of the centred data (NumPy, float64)."""
  xc = x - x.mean(0)
  _, s, vt = np.linalg.svd(xc, full_matrices=False)
  var = s**2 / (x.shape[0] - 1)
  return vt[:k], var[:k], var[:k] / var.sum()


def _low_rank_data(rng, n, d, spectrum):
  """n points in d dims with distinct variances `spectrum` along random orthonormal directions + noise."""
  basis, _ = np.linalg.qr(rng.normal(size=(d, len(spectrum))))
  z = rng.normal(size=(n, len(spectrum))) * np.sqrt(spectrum)
  return z @ basis.T + 0.01 * rng.normal(size=(n, d)) + rng.normal(size=d)


@pytest.mark.parametrize('n,d', [(200, 12), (40, 300)], ids=['primal', 'dual'])
def test_pca_matches_svd_reference(n, d):
  rng = np.random.default_rng(0)
  x = _low_rank_data(rng, n, d, spectrum=[9.0, 4.0, 1.0, 0.25])
  with jax.enable_x64(True):
    pca = analysis.fit_pca(jnp.asarray(x), n_components=3)
    comps = np.asarray(pca.components)
    proj = np.asarray(analysis.pca_transform(pca, jnp.asarray(x)))
  ref_comps, ref_var, ref_ratio = _svd_reference(x, 3)
  # Same subspace and directions up to sign.
  np.testing.assert_allclose(np.abs(np.sum(comps * ref_comps, axis=1)), 1.0, atol=1e-8)
  np.testing.assert_allclose(np.asarray(pca.explained_variance), ref_var, rtol=1e-8)
  np.testing.assert_allclose(np.asarray(pca.explained_variance_ratio), ref_ratio, rtol=1e-8)
  np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-10)
  # Sign convention: the largest-magnitude loading of each component is positive.
  assert np.all(comps[np.arange(3), np.argmax(np.abs(comps), axis=1)] > 0)
  # Projections agree with the reference (after aligning signs).
  signs = np.sign(np.sum(comps * ref_comps, axis=1))
  np.testing.assert_allclose(proj, (x - x.mean(0)) @ (ref_comps * signs[:, None]).T, atol=1e-8)


def test_pca_float32_close_to_reference():
  rng = np.random.default_rng(1)
  x = _low_rank_data(rng, 60, 500, spectrum=[9.0, 4.0, 1.0])
  pca = analysis.fit_pca(x.astype(np.float32), n_components=3)
  ref_comps, ref_var, _ = _svd_reference(x, 3)
  np.testing.assert_allclose(
    np.abs(np.sum(np.asarray(pca.components) * ref_comps, axis=1)), 1.0, atol=1e-4
  )
  np.testing.assert_allclose(np.asarray(pca.explained_variance), ref_var, rtol=1e-3)


def test_pca_rejects_degenerate_inputs():
  with pytest.raises(ValueError, match='directions of non-zero variance'):
    analysis.fit_pca(np.ones((20, 8), np.float32), 3)
  rank1 = np.outer(np.arange(20.0), np.ones(8)).astype(np.float32)
  with pytest.raises(ValueError, match='directions of non-zero variance'):
    analysis.fit_pca(rank1, 2)
  with pytest.raises(ValueError, match='n_components'):
    analysis.fit_pca(np.random.default_rng(0).normal(size=(3, 8)), 3)
  bad = np.random.default_rng(0).normal(size=(10, 4))
  bad[2, 1] = np.nan
  with pytest.raises(ValueError, match='non-finite'):
    analysis.fit_pca(bad, 2)


def test_flatten_trajectories_keeps_video_and_time_order():
  acts = np.arange(2 * 3 * 2 * 2 * 5).reshape(2, 3, 2, 2, 5)
  traj = np.asarray(analysis.flatten_trajectories(acts))
  assert traj.shape == (2, 3, 20)
  np.testing.assert_array_equal(traj[1, 2], acts[1, 2].ravel())


def test_endpoint_separation_known_values():
  # Three 2-D trajectories; spread: RMS distance of all points from their mean.
  traj = np.zeros((3, 2, 2))
  traj[0, 1] = [0.0, 0.0]
  traj[1, 1] = [3.0, 4.0]
  traj[2, 1] = [3.0, -4.0]
  pts = traj.reshape(-1, 2)
  spread = np.sqrt(np.mean(np.sum((pts - pts.mean(0)) ** 2, axis=1)))
  np.testing.assert_allclose(float(analysis.trajectory_spread(traj)), spread, rtol=1e-6)
  np.testing.assert_allclose(analysis.endpoint_separation(traj, [0], [1]), 5.0 / spread, rtol=1e-6)
  # Groups compare their mean end points: mean of (3,4) and (3,-4) is (3,0).
  np.testing.assert_allclose(
    analysis.endpoint_separation(traj, [0], [1, 2]), 3.0 / spread, rtol=1e-6
  )
  # Scale-free: scaling the whole space leaves the separation unchanged.
  np.testing.assert_allclose(
    analysis.endpoint_separation(7.0 * traj, [0], [1]), 5.0 / spread, rtol=1e-6
  )


def test_early_recognition_counts_per_step_and_joint():
  # 2 videos, 3 steps. Head a: classes 2, head b: classes 3.
  la = np.array([[[1, 0], [0, 1], [0, 1]], [[1, 0], [1, 0], [0, 1]]], np.float32)
  lb = np.array([[[0, 0, 1], [0, 0, 1], [1, 0, 0]], [[0, 1, 0], [0, 0, 1], [0, 1, 0]]], np.float32)
  curves = analysis.early_recognition(
    {'a': la, 'b': lb}, {'a': np.array([1, 0]), 'b': np.array([2, 1])}
  )
  np.testing.assert_allclose(curves['a'], [0.5, 1.0, 0.5])
  np.testing.assert_allclose(curves['b'], [1.0, 0.5, 0.5])
  # joint: video0 right on a at steps 1,2 and on b at 0,1 -> step 1; video1 a at 0,1, b at 0,2 -> step 0.
  np.testing.assert_allclose(curves['joint'], [0.5, 0.5, 0.0])
  single = analysis.early_recognition({'a': la}, {'a': np.array([1, 0])})
  assert set(single) == {'a'}


def test_part_accuracy_scores_each_position_of_a_composition():
  names = {'action': ['JP-OH', 'JP-TH', 'OH-OH', 'OH-TH'], 'ado': ['cup', 'laptop']}
  one_hot = lambda classes, k: np.eye(k, dtype=np.float32)[np.asarray(classes)][:, None, :]  # noqa: E731
  # 3 videos; one voting step each. Predicted action classes 0, 3, 2 vs true 1, 3, 0.
  logits = {'action': one_hot([0, 3, 2], 4), 'ado': one_hot([0, 1, 1], 2)}
  labels = {'action': np.array([1, 3, 0]), 'ado': np.array([0, 1, 0])}
  acc = analysis.part_accuracy(logits, labels, names, voting_steps=1)
  assert list(acc) == ['action[1]', 'action[2]', 'ado', 'joint']
  # position 1: JP=JP, OH=OH, OH!=JP; position 2: OH!=TH, TH=TH, OH=OH.
  np.testing.assert_allclose(acc['action[1]'], 2 / 3)
  np.testing.assert_allclose(acc['action[2]'], 2 / 3)
  np.testing.assert_allclose(acc['ado'], 2 / 3)
  np.testing.assert_allclose(acc['joint'], 1 / 3)  # only video 1 is right on both heads
  assert analysis.name_parts(['a-b', 'c']) == 1 and analysis.name_parts(['a-b-c']) == 3


def test_confusion_counts_voted_predictions_per_true_class():
  # 4 videos, 3 voting steps, 3 classes; the vote takes the most frequent argmax.
  steps = lambda *classes: np.eye(3, dtype=np.float32)[list(classes)]  # noqa: E731
  logits = {'m': np.stack([steps(0, 0, 1), steps(2, 1, 1), steps(2, 2, 0), steps(1, 1, 1)])}
  labels = {'m': np.array([0, 1, 1, 2])}
  got = analysis.confusion(logits, labels, {'m': 3}, voting_steps=3)['m']
  # voted: 0, 1, 2, 1 -> (0,0), (1,1), (1,2), (2,1)
  np.testing.assert_array_equal(got, [[1, 0, 0], [0, 1, 1], [0, 1, 0]])
  assert got.sum(1).tolist() == [1, 2, 1]
  # Only the last voting step: predictions 1, 1, 0, 1.
  last = analysis.confusion(logits, labels, {'m': 3}, voting_steps=1)['m']
  np.testing.assert_array_equal(last, [[0, 1, 0], [1, 1, 0], [0, 1, 0]])


def test_accuracy_by_class_splits_a_head_by_the_true_class_of_another():
  # 4 videos, one step; head 'a' (2 classes) right on videos 0, 1, 3; head 'b' (3 classes, class 2
  # absent) right on videos 0, 2.  True a: 0, 0, 1, 1; true b: 0, 1, 1, 0.
  one = lambda k, *classes: np.eye(k, dtype=np.float32)[list(classes)][:, None]  # noqa: E731
  logits = {'a': one(2, 0, 0, 0, 1), 'b': one(3, 0, 0, 1, 1)}
  labels = {'a': np.array([0, 0, 1, 1]), 'b': np.array([0, 1, 1, 0])}
  got = analysis.accuracy_by_class(logits, labels, voting_steps=1)
  assert list(got) == ['a by b', 'b by a']
  # 'a' right on videos 0, 1, 3: among b = 0 (videos 0, 3) 2 of 2, b = 1 (videos 1, 2) 1 of 2.
  np.testing.assert_allclose(got['a by b'][:2], [1.0, 0.5])
  assert np.isnan(got['a by b'][2])
  # 'b' right on videos 0, 2: among a = 0 (videos 0, 1) 1 of 2, a = 1 (videos 2, 3) 1 of 2.
  np.testing.assert_allclose(got['b by a'], [0.5, 0.5])
  assert analysis.accuracy_by_class({'a': logits['a']}, {'a': labels['a']}, 1) == {}


def test_class_groups_pool_the_classes_that_carry_the_same_classes_of_a_head():
  # synthcl2's shape: actions 0, 1 (move, drag) carry directions 0-1, actions 2, 3 (touch,
  # sweep) counts 2-3; 'ado' is carried by every action, so it gives no grouping.
  action = np.array([0, 0, 1, 1, 2, 2, 3, 3])
  modifier = np.array([0, 1, 0, 1, 2, 3, 2, 3])
  ado = np.array([0, 1, 1, 0, 0, 1, 1, 0])
  groups = analysis.class_groups({'ado': ado, 'action': action, 'modifier': modifier})
  assert groups == {
    'action by modifier': [[0, 1], [2, 3]],
    'modifier by action': [[0, 1], [2, 3]],
  }
  # Classes one by one already say it all: two classes, each carrying its own, give no groups.
  assert analysis.class_groups({'a': np.array([0, 1]), 'b': np.array([0, 1])}) == {}


def test_accuracy_by_class_with_groups_pools_the_videos_of_each_group():
  one = lambda k, *classes: np.eye(k, dtype=np.float32)[list(classes)][:, None]  # noqa: E731
  # 'a' right on videos 0, 1, 2 (of 0-4); true b: 0, 1, 2, 2, 1.
  logits = {'a': one(2, 0, 1, 0, 0, 0), 'b': one(3, 0, 1, 2, 2, 1)}
  labels = {'a': np.array([0, 1, 0, 1, 1]), 'b': np.array([0, 1, 2, 2, 1])}
  got = analysis.accuracy_by_class(logits, labels, 1, groups={'a by b': [[0, 1], [2]]})
  # Group {0, 1}: videos 0, 1, 4, right on 0 and 1; group {2}: videos 2, 3, right on 2.
  assert list(got) == ['a by b']
  np.testing.assert_allclose(got['a by b'], [2 / 3, 0.5])
  # Singleton groups repeat the per-class numbers.
  singletons = analysis.accuracy_by_class(logits, labels, 1, groups={'a by b': [[0], [1], [2]]})
  assert singletons['a by b'] == analysis.accuracy_by_class(logits, labels, 1)['a by b']


def test_accuracy_by_class_table_rows_per_class_of_the_other_head():
  cell = lambda mean, se: {'mean': mean, 'se': se, 'per_fold': [mean]}  # noqa: E731
  by_class = {'a by b': [cell(1.0, 0.0), cell(0.5, 0.1)], 'b by a': [cell(0.25, 0.05)]}
  result = {
    'class_names': {'a': ['x'], 'b': ['p', 'q']},
    'models': {'mstrnn': {'accuracy_by_class': by_class}},
  }
  text = analysis.accuracy_by_class_table(result)
  assert '| head | videos of | MSTRNN |' in text
  assert '| a | b = p | 100.0 ± 0.0 |' in text and '| a | b = q | 50.0 ± 10.0 |' in text
  assert '| b | a = x | 25.0 ± 5.0 |' in text
  assert '| a | b in' not in text  # no class groups, no group rows
  grouped = {
    **result,
    'class_groups': {'a by b': [[0, 1]]},
    'models': {
      'mstrnn': {'accuracy_by_class': by_class, 'accuracy_by_group': {'a by b': [cell(0.75, 0.02)]}}
    },
  }
  assert '| a | b in p, q | 75.0 ± 2.0 |' in analysis.accuracy_by_class_table(grouped)
  one_head = {'class_names': {'a': ['x']}, 'models': {'lrcn': {'accuracy_by_class': {}}}}
  assert analysis.accuracy_by_class_table(one_head) == ''


def test_earliest_stable_step_and_table():
  curve = np.array([0.1, 0.9, 0.5, 0.95, 1.0])
  assert analysis.earliest_stable_step(curve, 0.9) == 3
  assert analysis.earliest_stable_step(curve, 0.05) == 0
  assert analysis.earliest_stable_step(np.array([1.0, 0.2]), 0.9) is None
  table = analysis.early_recognition_table(
    {'MSTRNN': {'action': curve}}, voting_steps=2, fractions=(0.2, 1.0)
  )
  row = table.splitlines()[2]
  assert row == '| MSTRNN | action | 10.0 | 100.0 | 97.5 | 4 / 5 |'


def test_figures_draw_every_trajectory(tmp_path):
  rng = np.random.default_rng(0)
  proj = {'MSTRNN': rng.normal(size=(3, 10, 3)), 'LRCN': rng.normal(size=(3, 10, 3))}
  names = ['JP-JP-JP', 'OH-JP-JP', 'OH-JP-JP']
  fig = plots.plot_pca_trajectories(
    proj, names, voting_steps=4, explained={m: np.array([0.5, 0.2, 0.1]) for m in proj}
  )
  axes = fig.axes
  assert len(axes) == 6
  # Per video: path before the voting period, voting period, start marker, end marker.
  assert all(len(ax.lines) == 4 * 3 for ax in axes)
  voting_line = axes[0].lines[1]
  np.testing.assert_allclose(voting_line.get_xdata(), proj['MSTRNN'][0, 6:, 0])
  np.testing.assert_allclose(axes[5].lines[3].get_ydata(), [proj['LRCN'][0, -1, 2]])
  assert axes[2].get_xlabel() == 'PC2 (20%)'
  legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
  assert legend_labels[:2] == ['JP-JP-JP', 'OH-JP-JP']
  fig.savefig(tmp_path / 'pca.png')
  with pytest.raises(ValueError, match='expected'):
    plots.plot_pca_trajectories({'m': rng.normal(size=(2, 10, 3))}, names, voting_steps=4)
  curves = {'MSTRNN': {'action': np.linspace(0, 1, 10), 'joint': np.linspace(0, 0.9, 10)}}
  fig2 = plots.plot_early_recognition(curves, voting_steps=4, chance={'action': 1 / 9})
  assert len(fig2.axes) == 2
  np.testing.assert_allclose(fig2.axes[0].lines[0].get_ydata(), 100 * curves['MSTRNN']['action'])
  fig2.savefig(tmp_path / 'early.png')


def test_per_fold_selection_takes_the_common_count_per_sequence():
  names = ['a', 'b', 'a', 'a', 'b', 'b', 'c']
  subjects = np.array([0, 0, 0, 1, 1, 1, 1])
  rows, groups = analysis._per_fold_selection(names, subjects, [0, 1], ['a', 'b'], ['s0', 's1'])
  # 'a': subject 0 has 2, subject 1 has 1 -> 1 each; 'b': 1 and 2 -> 1 each.
  np.testing.assert_array_equal(rows, [[0, 1], [3, 4]])
  assert groups == {'a': [0], 'b': [1]}
  with pytest.raises(ValueError, match=r"held-out subjects \['s0'\] have no video named 'c'"):
    analysis._per_fold_selection(names, subjects, [0, 1], ['a', 'c'], ['s0', 's1'])


def test_video_names_join_heads_in_order():
  names = analysis.video_names(
    {'ado': ['book', 'laptop'], 'action': ['sweep', 'close']},
    {'ado': np.array([1, 0]), 'action': np.array([0, 1])},
  )
  assert names == ['laptop-sweep', 'book-close']


def test_loso_ridge_accuracy_reads_a_class_signal_and_not_noise():
  rng = np.random.default_rng(0)
  subjects = np.repeat(np.arange(5), 40)
  targets = rng.integers(0, 4, len(subjects))
  noise = rng.normal(size=(len(subjects), 20))
  signal = noise.copy()
  signal[:, :4] += 3.0 * np.eye(4)[targets]  # class k lifts feature k
  assert analysis.loso_ridge_accuracy(signal, targets, subjects, 4) > 0.9
  # Without the signal it is near chance (0.25) on held-out subjects.
  assert analysis.loso_ridge_accuracy(noise, targets, subjects, 4) < 0.4
