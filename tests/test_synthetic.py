"""Synthetic datasets: rasteriser geometry, counts, determinism, and the need for temporal memory."""

import collections

import numpy as np
import pytest

from mstrnn_jax import errors
from mstrnn_jax.analysis import loso_ridge_accuracy
from mstrnn_jax.data import render, synthetic, tabletop
from mstrnn_jax.data.pipeline import dataset_spec


def _coverage(shape, size=40):
  bg = np.zeros((1, size, size, 3), np.float32)
  img = render.render(bg, [shape], 1, 0.0, np.random.default_rng(0))
  return img[0, 0, :, :, 0].astype(np.float64) / 255.0


def test_disc_and_box_areas_match_geometry():
  white = np.ones((1, 3), np.float32)
  c = np.array([[[20.3, 19.6]]])
  disc = _coverage(render.Capsule(c, c, 7.0, white))
  assert disc.sum() == pytest.approx(np.pi * 49, rel=0.02)
  edge = np.array([[[20.0, 0.0]]])  # half of this disc lies outside the frame
  assert _coverage(render.Capsule(edge, edge, 7.0, white)).sum() == pytest.approx(
    np.pi * 49 / 2, rel=0.03
  )
  seg = _coverage(render.Capsule(c - [[[0, 6]]], c + [[[0, 6]]], 3.0, white))
  assert seg.sum() == pytest.approx(np.pi * 9 + 12 * 6, rel=0.02)
  for angle in (0.0, 0.4, np.pi / 2):
    box = _coverage(render.Box(c, np.array([5.0, 9.0]), angle, white))
    assert box.sum() == pytest.approx(4 * 5 * 9, rel=0.02)


def test_box_rotation_direction():
  # A tall thin box rotated by +90 degrees (counter-clockwise) becomes wide.
  white = np.ones((1, 3), np.float32)
  c = np.array([[[20.0, 20.0]]])
  box = _coverage(render.Box(c, np.array([10.0, 2.0]), np.pi / 2, white)) > 0.5
  rows, cols = np.nonzero(box)
  assert np.ptp(cols) > 3 * np.ptp(rows)


@pytest.fixture(scope='module')
def s3a():
  return synthetic.synth3a()


def test_synth3a_structure(s3a):
  spec = dataset_spec('synth3a')
  assert s3a.videos.shape == (243, spec.t_max, 36, 36, 3) and s3a.videos.dtype == np.uint8
  assert spec.t_max <= 30 and s3a.crop_size == spec.crop_size == 32
  assert s3a.heads == (('action', 27),) and s3a.class_names['action'][5] == 'JP-OH-TH'
  for s in range(9):
    assert sorted(s3a.labels['action'][s3a.subjects == s]) == list(range(27))
  for v, n in zip(s3a.videos, s3a.lengths):  # padded with the last frame (Sec. II.E)
    assert (v[n:] == v[n - 1]).all() and not (v[n - 2] == v[n - 1]).all()


def test_synth3a_deterministic_and_seeded(s3a):
  small = dict(frame_size=20, crop_margin=2, num_subjects=2)
  a, b = synthetic.synth3a(**small), synthetic.synth3a(**small)
  assert (a.videos == b.videos).all()
  c = synthetic.synth3a(seed=1, **small)
  assert not (a.videos == c.videos[:, : a.t_max]).all()
  assert a.videos.shape[2:4] == (20, 20) and a.crop_size == 18


def test_synth3a_first_primitive_needs_memory(s3a):
  first, third = s3a.labels['action'] // 9, s3a.labels['action'] % 3
  feats = lambda frames: frames[:, ::2, ::2].reshape(len(frames), -1).astype(np.float64)
  last = feats(s3a.videos[np.arange(len(s3a)), s3a.lengths - 1])
  # The last frame says nothing about the first primitive (chance: 1/3) ...
  assert loso_ridge_accuracy(last, first, s3a.subjects, 3) < 0.45
  # ... although the same classifier reads the third primitive's trace from it,
  assert loso_ridge_accuracy(last, third, s3a.subjects, 3) > 0.55
  # and reads the first primitive from a frame inside it (its middle: subjects differ in tempo).
  inside = s3a.videos[np.arange(len(s3a)), s3a.lengths // 6]
  assert loso_ridge_accuracy(inside.reshape(len(s3a), -1), first, s3a.subjects, 3) > 0.7


def test_default_counts_match_the_paper():
  for name, videos, subjects in (('synth3a', 243, 9), ('synthcl1', 900, 10), ('synthcl2', 840, 10)):
    spec = dataset_spec(name)
    assert (spec.num_videos, spec.num_subjects) == (videos, subjects)
    assert spec.t_max <= 32 and spec.frame_size == (36, 36) and spec.crop_size == 32


def test_synthcl1_structure():
  ds = tabletop.synthcl1(num_subjects=2, frame_size=20, crop_margin=2)
  assert ds.heads == (('ado', 4), ('action', 9)) and len(ds) == 2 * 15 * 6
  assert ds.videos.shape[1] == dataset_spec('synthcl1', num_subjects=2).t_max
  pairs = [(ds.class_names["ado"][o], ds.class_names["action"][a])
           for o, a in zip(ds.labels["ado"], ds.labels["action"])]  # fmt: skip
  for s in range(2):
    counts = collections.Counter(p for p, sub in zip(pairs, ds.subjects) if sub == s)
    assert counts == {c: 6 for c in tabletop.CL1_CATEGORIES}
  plan = tabletop._cl1_plan(tabletop.Synthcl1Args(num_subjects=2))
  assert (plan['distractor'] != plan['ado']).all()
  for start in range(0, len(plan['ado']), 6):  # the 3 other objects, each open once, closed once
    d = plan['distractor'][start : start + 6]
    st = plan['distractor_state'][start : start + 6]
    assert sorted(zip(d, st)) == sorted((o, x) for o in set(range(4)) - {plan["ado"][start]}
                                        for x in (0.0, 1.0))  # fmt: skip


def test_synthcl2_structure():
  assert len(set(tabletop.SYNTHCL2_TRIPLETS)) == 42
  for example in (
    ('spray', 'move', 'to_left'),
    ('box', 'drag', 'to_front'),
    ('cup', 'touch', '2_times'),
    ('book', 'sweep', '3_times'),
  ):  # paper Fig. 10
    assert example in tabletop.SYNTHCL2_TRIPLETS
  ds = tabletop.synthcl2(num_subjects=1, frame_size=20, crop_margin=2)
  assert ds.heads == (('ado', 4), ('action', 4), ('modifier', 6)) and len(ds) == 84
  names = [tuple(ds.class_names[h][ds.labels[h][i]] for h, _ in ds.heads) for i in range(84)]
  assert collections.Counter(names) == {t: 2 for t in tabletop.SYNTHCL2_TRIPLETS}
  a = tabletop.synthcl2(num_subjects=1, frame_size=20, crop_margin=2)
  assert (a.videos == ds.videos).all()


def test_synthcl2_count_not_in_any_single_frame():
  ds = tabletop.synthcl2(num_subjects=6, frame_size=24, crop_margin=2)
  sel = ds.labels['modifier'] >= 4  # 2_times / 3_times
  videos, y, subj, lengths = (
    ds.videos[sel].astype(np.float64),
    ds.labels['modifier'][sel] - 4,
    ds.subjects[sel],
    ds.lengths[sel],
  )
  flat = lambda frames: frames[:, ::2, ::2].reshape(len(frames), -1)
  # A frame at the same point of each video's own length: a 3-times video lasts longer, so only
  # a model that keeps time (memory) could use which frame index it has reached.
  for position in np.linspace(0, 1, 11):
    t = np.round(position * (lengths - 1)).astype(int)
    frames = videos[np.arange(len(videos)), t]
    assert loso_ridge_accuracy(flat(frames), y, subj, 2) < 0.62, position
  # The temporal pattern does carry the count: the spectrum of the motion energy over each
  # video's own length (subjects differ in tempo) reads it.
  motion = np.abs(np.diff(videos, axis=1)).mean((2, 3, 4))
  grid = np.linspace(0, 1, 64)
  motion = np.stack([np.interp(grid * (n - 2), np.arange(n - 1), m[: n - 1])
                     for m, n in zip(motion, lengths)])  # fmt: skip
  spectrum = np.abs(np.fft.rfft(motion - motion.mean(1, keepdims=True), axis=1))
  assert loso_ridge_accuracy(spectrum, y, subj, 2) > 0.65


@pytest.mark.parametrize(
  'timing, ratio', [('per_stroke', (1.15, 1.35)), ('equal_total', (0.95, 1.05))]
)
def test_synthcl2_count_timing_sets_how_long_a_count_lasts(timing, ratio):
  """'per_stroke': 3 strokes last longer than 2 in every subject; 'equal_total': as long."""
  plan = tabletop._cl2_plan(tabletop.Synthcl2Args(count_timing=timing))
  mod, lengths = plan['modifier'], plan['lengths']
  for s in range(10):
    two, three = ((plan['subjects'] == s) & (mod == 4 + i) for i in range(2))
    assert ratio[0] < lengths[three].mean() / lengths[two].mean() < ratio[1], s
  direction = lengths[mod < 4]
  (other_timing,) = set(tabletop.COUNT_TIMINGS) - {timing}
  other = tabletop._cl2_plan(tabletop.Synthcl2Args(count_timing=other_timing))
  assert (other['lengths'][mod < 4] == direction).all()  # moves and drags do not change
  with pytest.raises(ValueError, match='count_timing'):
    tabletop.Synthcl2Args(count_timing='natural')


def test_synthcl2_stroke_scale_changes_only_touch_and_sweep():
  small = {'num_subjects': 1, 'frame_size': 20, 'crop_margin': 2}
  base, big = tabletop.synthcl2(**small), tabletop.synthcl2(**small, stroke_scale=2.0)
  strokes = np.isin(base.labels['action'], [2, 3])  # touch, sweep
  assert (big.videos[~strokes] == base.videos[~strokes]).all()
  assert (big.videos[strokes] != base.videos[strokes]).mean() > 0.02
  with pytest.raises(ValueError, match='stroke_scale'):
    tabletop.Synthcl2Args(stroke_scale=0.0)


def test_generators_and_specs_share_one_argument_record():
  for name, record in (("synth3a", synthetic.Synth3aArgs), ("synthcl1", tabletop.Synthcl1Args),
                       ("synthcl2", tabletop.Synthcl2Args)):  # fmt: skip
    with pytest.raises(ValueError, match=record.__name__):
      dataset_spec(name, frames=3)
    assert record().tempo_ratio == 2.0
  spec = dataset_spec('synth3a', num_subjects=2, tempo_ratio=1.0, frames_per_primitive=5)
  assert (
    spec.t_max
    == synthetic.synth3a(
      num_subjects=2, tempo_ratio=1.0, frame_size=20, crop_margin=2, frames_per_primitive=5
    ).t_max
    <= 16
  )


def test_subject_tempi_spread_over_the_tempo_ratio():
  people = synthetic.sample_people(np.random.default_rng(0), 200)
  speed = synthetic.subject_speed(people, 2.0)
  assert 1.8 < speed.max() / speed.min() <= 2.0 and abs(np.log(speed).mean()) < 0.05
  with pytest.raises(ValueError, match='tempo_ratio'):
    synthetic.subject_speed(people, 0.5)


def test_subject_spread_widens_geometry_and_style_around_each_anchor():
  people = synthetic.sample_people(np.random.default_rng(0), 200)
  assert synthetic.widen(people, 1.0) is people
  wide = synthetic.widen(people, 2.0)
  np.testing.assert_allclose(wide['amp'] - 1, 2 * (people['amp'] - 1), atol=1e-6)
  np.testing.assert_allclose(1 - wide['scale'], 2 * (1 - people['scale']), atol=1e-6)
  assert wide['scale'].max() <= people['scale'].max() + 1e-6  # nobody grows taller
  assert 0.26 - 1e-4 < wide['x'].min() < 0.3 and 0.7 < wide['x'].max() < 0.74 + 1e-4
  assert wide['stance'].min() >= 0.005 and wide['rest_arm'].min() >= 0.02
  np.testing.assert_array_equal(wide['shirt'], people['shirt'])  # colours are not widened
  huge = synthetic.widen(people, 8.0)
  assert huge['x'].max() == np.float32(0.8) and huge['scale'].min() == np.float32(0.3)
  assert huge['amp'].min() > 0 and huge['proportions'].min() > 0 and huge['ground'].max() < 1
  for name in ('x', 'ground', 'proportions', 'amp', 'scale'):  # these bounds do not bind at 2
    _, lo, hi = synthetic._SPREAD_ANCHORS[name]
    assert (lo is None or wide[name].min() > lo) and (hi is None or wide[name].max() < hi), name
  with pytest.raises(errors.ArgError, match='subject_spread=0.0 must be > 0'):
    synthetic.Synth3aArgs(subject_spread=0.0)
  with pytest.raises(ValueError, match=r'^mstrnn_jax/data: synth3a\(subject_spread=...\): '):
    synthetic.synth3a(subject_spread=-1.0)


def test_subject_spread_changes_the_figures_not_labels_timing_or_scene():
  small = dict(num_subjects=2, frame_size=20, crop_margin=2, frames_per_primitive=4)
  a, b = synthetic.synth3a(**small), synthetic.synth3a(subject_spread=2.0, **small)
  np.testing.assert_array_equal(a.lengths, b.lengths)
  np.testing.assert_array_equal(a.labels['action'], b.labels['action'])
  assert not np.array_equal(a.videos, b.videos)
  np.testing.assert_array_equal(a.videos, synthetic.synth3a(subject_spread=1.0, **small).videos)


def test_clip_cuts_repeat_each_primitive_a_random_number_of_cycles_from_a_random_phase():
  small = dict(num_subjects=3, frame_size=20, crop_margin=2, frames_per_primitive=8, tempo_ratio=1)
  base = synthetic._synth3a_plan(synthetic.Synth3aArgs(**small))
  cut = synthetic._synth3a_plan(
    synthetic.Synth3aArgs(min_cycles=1.5, max_cycles=3.5, clip_cuts=True, **small)
  )
  np.testing.assert_array_equal(base['labels'], cut['labels'])
  assert (base['cycles'] == 2).all() and (base['start'] == 0).all()
  assert 1.5 <= cut['cycles'].min() < 1.7 and 3.3 < cut['cycles'].max() <= 3.5
  # A primitive lasts frames_per_primitive * cycles / 2 frames (tempo 1, +-5% clip jitter).
  durations = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(cut['seg'][0])) + 1]))
  np.testing.assert_allclose(durations, 4 * cut['cycles'][0, :2], rtol=0.12, atol=0.5)
  # Default: every primitive starts in the rest pose; with cuts, anywhere in its cycle.
  assert cut['start'].min() < 0.05 and cut['start'].max() > 0.95 and cut['clip_cuts']

  # The one-hand wave (first primitive of classes 9-17): by default the right hand starts at
  # the side, below the shoulder, and is raised after the first quarter; with cuts it is above
  # the shoulder in every frame of the clip.
  def right_hand_above_shoulder(plan):
    shapes = synthetic._synth3a_shapes(plan, 20, np.random.default_rng(0))
    shoulder, hand = shapes[8].a[..., 0], shapes[10].a[..., 0]  # y grows downwards
    oh_first = (plan['labels'] // 9 == 1) & (plan['subjects'] == 0)
    return (hand < shoulder)[oh_first] & (plan['seg'][oh_first] == 0)

  assert not right_hand_above_shoulder(base)[:, 0].any() and right_hand_above_shoulder(base).any()
  np.testing.assert_array_equal(right_hand_above_shoulder(cut), cut['seg'][9:18] == 0)
  a = synthetic.synth3a(**small)
  b = synthetic.synth3a(min_cycles=1.5, max_cycles=3.5, clip_cuts=True, **small)
  assert (np.abs(a.videos[:, 0].astype(int) - b.videos[:, 0]) > 30).mean() > 0.005
  with pytest.raises(ValueError, match='min_cycles <= max_cycles'):
    synthetic.Synth3aArgs(min_cycles=3, max_cycles=2)


def test_reuse_clips_makes_a_subjects_videos_orderings_of_the_same_three_clips():
  small = dict(num_subjects=2, frame_size=20, crop_margin=2, frames_per_primitive=8, noise_std=0.0)
  cuts = dict(min_cycles=1.5, max_cycles=3.5, clip_cuts=True)
  fresh = synthetic.synth3a(**cuts, **small)
  reuse = synthetic.synth3a(reuse_clips=True, **cuts, **small)
  np.testing.assert_array_equal(fresh.labels['action'], reuse.labels['action'])
  segs = {
    reuse_clips: synthetic._synth3a_plan(
      synthetic.Synth3aArgs(reuse_clips=reuse_clips, **cuts, **small)
    )['seg']
    for reuse_clips in (False, True)
  }

  def clip(data, video, slot):
    n, seg = data.lengths[video], segs[data is reuse]
    return data.videos[video, :n][seg[video, :n] == slot]

  # Class 9a + 3b + c is primitives (a, b, c); subject 1's videos are 27..53.
  for v in (0, 27):
    jp_oh_th, th_jp_oh, jp_jp_jp = v + 0 * 9 + 1 * 3 + 2, v + 2 * 9 + 0 * 3 + 1, v
    for (va, sa), (vb, sb) in (
      ((jp_oh_th, 0), (th_jp_oh, 1)),  # JP
      ((jp_oh_th, 1), (th_jp_oh, 2)),  # OH
      ((jp_oh_th, 2), (th_jp_oh, 0)),  # TH
      ((jp_oh_th, 0), (jp_jp_jp, 2)),  # JP again, in another slot
    ):
      np.testing.assert_array_equal(clip(reuse, va, sa), clip(reuse, vb, sb))
      a, b = clip(fresh, va, sa), clip(fresh, vb, sb)
      assert a.shape != b.shape or not np.array_equal(a, b)  # fresh clips differ
  # A clip has one length wherever it is used: a video's length is the sum of its clips'.
  cube = reuse.lengths[:27].reshape(3, 3, 3).astype(int)
  d = [cube[p, p, p] // 3 for p in range(3)]
  np.testing.assert_array_equal(cube, np.add.outer(np.add.outer(d, d), d))
  assert not np.array_equal(reuse.videos[0], reuse.videos[27])  # subjects differ
  # Without reuse_clips the draws are untouched.
  np.testing.assert_array_equal(
    fresh.videos, synthetic.synth3a(reuse_clips=False, **cuts, **small).videos
  )


@pytest.mark.parametrize('k', [1, 2, 3, 27])
def test_clips_per_primitive_gives_each_subject_k_clips_used_in_turn(k):
  args = dict(num_subjects=2, min_cycles=1.5, max_cycles=3.5, clip_cuts=True, reuse_clips=True)
  plan = synthetic._synth3a_plan(synthetic.Synth3aArgs(clips_per_primitive=k, **args))
  one = synthetic._synth3a_plan(synthetic.Synth3aArgs(**args))
  for s in range(2):
    rows = plan['subjects'] == s
    for p in range(3):
      used = plan['primitive'][rows] == p  # the subject's 27 slots of primitive p
      cycles = plan['cycles'][rows][used]  # in video order, then slot order
      assert len(np.unique(cycles)) == k  # continuous draws: k clips, k values
      np.testing.assert_array_equal(cycles, np.resize(cycles[:k], cycles.size))  # in turn
      assert cycles[0] == one['cycles'][rows][used][0]  # clip 0 is the one-clip draw
  # Whole videos: a subject's two slots that show the same clip show the same frames.
  small = dict(frame_size=20, crop_margin=2, frames_per_primitive=8, noise_std=0.0)
  if k == 2:
    data = synthetic.synth3a(clips_per_primitive=2, **args, **small)
    seg = synthetic._synth3a_plan(synthetic.Synth3aArgs(clips_per_primitive=2, **args, **small))[
      'seg'
    ]

    def clip(video, slot):
      n = data.lengths[video]
      return data.videos[video, :n][seg[video, :n] == slot]

    # JP-JP-JP (video 0) shows JP clips 0, 1, 0; JP-JP-OH (video 1) then JP clips 1, 0.
    np.testing.assert_array_equal(clip(0, 0), clip(0, 2))
    np.testing.assert_array_equal(clip(0, 1), clip(1, 0))
    np.testing.assert_array_equal(clip(0, 0), clip(1, 1))
    assert clip(0, 0).shape != clip(0, 1).shape or not np.array_equal(clip(0, 0), clip(0, 1))


def test_clips_per_primitive_is_checked():
  with pytest.raises(ValueError, match='needs reuse_clips=True'):
    synthetic.Synth3aArgs(clips_per_primitive=2)
  for k in (0, 28):
    with pytest.raises(ValueError, match=f'clips_per_primitive={k} must be in 1..27'):
      synthetic.Synth3aArgs(reuse_clips=True, clips_per_primitive=k)
