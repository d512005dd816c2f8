"""Procedurally generated analogues of the paper's datasets (synthetic, not the real videos).

* `synth3a`  -- 3ACWD analogue (this module): an articulated figure performs three primitives
  in a row, jump-in-place (JP), one-hand-wave (OH), two-hand-wave (TH): 27 ordered-triple
  classes, one video per class and subject.
* `synthcl1`, `synthcl2` -- CL1AD / CL2AD analogues: see `mstrnn_jax.data.tabletop`.

This module also holds what they share: subject sampling, backgrounds, the frame timeline.
Every generator is deterministic from `seed`, vectorised over videos and time, and takes
seconds. Subjects differ in body proportions, clothing/skin colours, background colour and
texture, position, tempo, amplitude and phase; each clip adds its own jitter and pixel noise.
Subject tempi spread geometrically over a factor `tempo_ratio` (default 2: the slowest subject
takes up to twice as long as the fastest, as real people do).

Each dataset takes one argument record (`Synth3aArgs`, `tabletop.Synthcl1Args`,
`tabletop.Synthcl2Args`): the generator and its `*_spec` function accept the same keyword
arguments, the record's fields.
In synth3a every primitive is, by default, two cycles from rest pose to rest pose; with
`clip_cuts` it is instead cut from an endless repetition at a random point of its cycle, like
the real clips. Either way its duration does not depend on its type, so the end of a video
carries no information about its first primitive. With `reuse_clips` a subject has one clip per
primitive, and its 27 videos are the 27 orderings of those three clips, as in the real 3ACWD
(the paper's Sec. III.B: one Weizmann clip per action and subject); `clips_per_primitive=k`
gives it k clips per primitive instead, used in turn, between that and a fresh clip per slot.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from matplotlib.colors import hsv_to_rgb

from mstrnn_jax.data import render
from mstrnn_jax.data.dataset import Dataset, DatasetSpec, repeat_last_frame
from mstrnn_jax.errors import ArgError

PRIMITIVES = ('JP', 'OH', 'TH')  # jump-in-place, one-hand-wave, two-hand-wave
SYNTH3A_CLASSES = tuple('-'.join(c) for c in itertools.product(PRIMITIVES, repeat=3))

# Independent random streams (salts) so that, e.g., timing does not change with frame size.
_PEOPLE, _TIMING, _CLIP, _NOISE, _CYCLES = 11, 12, 13, 14, 15


def hsv(h, s, v) -> np.ndarray:
  return hsv_to_rgb(np.stack(np.broadcast_arrays(h, s, v), -1)).astype(np.float32)


# Anchor and clip bounds of the per-subject geometry and motion-style ranges that `widen` scales:
# the range's middle, except body scale, anchored at its top so that no figure grows taller.
# The bounds keep figures in the frame and sizes positive at any spread; at spread 2 only those
# of rest_arm and stance bind.
_SPREAD_ANCHORS = {
  'x': (0.5, 0.2, 0.8),
  'ground': (0.87, 0.75, 0.95),
  'proportions': (1.0, 0.5, 1.5),
  'amp': (1.0, 0.2, None),
  'phase': (0.0, None, None),
  'rest_arm': (0.235, 0.02, None),
  'stance': (0.045, 0.005, None),
  'scale': (1.0, 0.3, None),
}


def widen(people: dict, spread: float) -> dict:
  """`people` with each geometry / motion draw `v` moved to `c + spread (v - c)` (see
  `_SPREAD_ANCHORS`); `spread=1` returns the same values, 2 doubles every range's half-width.
  `spread > 0` (`Synth3aArgs` checks it)."""
  if spread == 1:
    return people  # bit for bit: c + (v - c) need not round back to v
  out = dict(people)
  for name, (c, lo, hi) in _SPREAD_ANCHORS.items():
    v = c + spread * (people[name] - c)
    out[name] = (v if lo is None and hi is None else np.clip(v, lo, hi)).astype(np.float32)
  return out


def sample_people(rng: np.random.Generator, num: int) -> dict:
  """Per-subject appearance and motion style (all arrays have leading dim `num`)."""
  u = lambda lo, hi, *shape: rng.uniform(lo, hi, (num,) + shape).astype(np.float32)
  skin_tones = np.array(
    [
      [0.96, 0.80, 0.69],
      [0.87, 0.67, 0.52],
      [0.70, 0.50, 0.36],
      [0.52, 0.35, 0.24],
      [0.36, 0.24, 0.16],
    ],
    np.float32,
  )
  return dict(
    skin=skin_tones[rng.integers(0, len(skin_tones), num)] * u(0.92, 1.05, 1),
    hair=hsv(u(0.02, 0.12), u(0.3, 0.8), u(0.05, 0.45)),
    shirt=hsv(u(0, 1), u(0.55, 0.95), u(0.25, 0.65)),
    trousers=hsv(u(0, 1), u(0.2, 0.7), u(0.08, 0.35)),
    long_sleeves=rng.random(num) < 0.5,
    bg=hsv(u(0, 1), u(0.08, 0.35), u(0.72, 0.92)),
    floor=hsv(u(0, 1), u(0.1, 0.4), u(0.45, 0.7)),
    texture_kind=rng.integers(0, 4, num),
    texture_amp=u(0.03, 0.07),
    texture_period=u(0.12, 0.3),  # fraction of the frame
    texture_angle=u(0, np.pi),
    scale=u(0.8, 1.0),  # body height factor
    proportions=u(0.9, 1.1, 6),  # torso, leg, upper arm, forearm, head, girth
    x=u(0.38, 0.62),  # horizontal position (fraction of the frame)
    ground=u(0.84, 0.9),  # ground line (fraction of the frame)
    tempo_q=u(0, 1),  # tempo quantile: `subject_speed` maps it to a duration factor
    amp=u(0.85, 1.15),
    phase=u(-0.6, 0.6),
    rest_arm=u(0.12, 0.35),  # rest angle of the arms from vertical
    stance=u(0.02, 0.07),  # feet apart (fraction of the frame)
  )


def subject_speed(people: dict, tempo_ratio: float) -> np.ndarray:
  """Per-subject duration factor `[subjects]` (>1: slower), geometric in `[r^-1/2, r^1/2]`."""
  if tempo_ratio < 1:
    raise ValueError(f'mstrnn_jax/data/synthetic.py: tempo_ratio must be >= 1, got {tempo_ratio}.')
  return (tempo_ratio ** (people['tempo_q'] - 0.5)).astype(np.float32)


def make_args(record: type, function: str, kwargs: dict):
  """`record(**kwargs)`, or a one-line error naming the function and the argument to fix."""
  names = [f.name for f in dataclasses.fields(record)]
  unknown = sorted(set(kwargs) - set(names))
  if unknown:
    raise ValueError(
      f'mstrnn_jax/data: {function} has no argument {", ".join(unknown)}; its '
      f'arguments ({record.__name__}): {", ".join(names)}.'
    )
  try:
    return record(**kwargs)
  except ArgError as e:
    raise ValueError(f'mstrnn_jax/data: {function}({e.field}=...): {e}') from None


def backgrounds(people: dict, size: int, ground: np.ndarray | None) -> np.ndarray:
  """Static textured backgrounds `[subjects, size, size, 3]`; floor below `ground` (fraction)."""
  g = (np.arange(size, dtype=np.float32) + 0.5) / size
  yy, xx = np.meshgrid(g, g, indexing='ij')
  ang = people['texture_angle'][:, None, None]
  proj = (np.cos(ang) * xx + np.sin(ang) * yy) / people['texture_period'][:, None, None]
  kind = people['texture_kind'][:, None, None]
  stripes = np.sign(np.sin(2 * np.pi * proj))
  checker = stripes * np.sign(
    np.sin(
      2 * np.pi * (np.cos(ang) * yy - np.sin(ang) * xx) / people['texture_period'][:, None, None]
    )
  )
  wave = np.sin(2 * np.pi * proj)
  gradient = 2 * (np.cos(ang) * xx + np.sin(ang) * yy) - 1
  tex = np.select([kind == 0, kind == 1, kind == 2], [stripes, checker, wave], gradient)
  shade = 1 + people['texture_amp'][:, None, None] * tex
  img = people['bg'][:, None, None, :] * shade[..., None]
  if ground is not None:
    floor = people['floor'][:, None, None, :] * (1 + 0.5 * (shade[..., None] - 1))
    img = np.where((yy[None] > ground[:, None, None])[..., None], floor, img)
  return np.clip(img, 0, 1).astype(np.float32)


def smoothstep(x):
  x = np.clip(x, 0.0, 1.0)
  return x * x * (3 - 2 * x)


def timeline(durations: np.ndarray) -> tuple:
  """Maps each frame to (segment index, local phase u in (0, 1)).

  durations: int `[videos, segments]`. Returns (lengths `[videos]`, seg `[videos, t_max]`,
  u `[videos, t_max]`); frames past a video's end repeat its last frame's values.
  """
  lengths = durations.sum(1)
  t_max = int(lengths.max())
  starts = np.concatenate([np.zeros_like(durations[:, :1]), np.cumsum(durations, 1)[:, :-1]], 1)
  t = np.minimum(np.arange(t_max)[None, :], lengths[:, None] - 1)
  seg = (t[:, :, None] >= starts[:, None, 1:]).sum(-1)
  start = np.take_along_axis(starts, seg, 1)
  dur = np.take_along_axis(durations, seg, 1)
  return lengths.astype(np.int32), seg, ((t - start + 0.5) / dur).astype(np.float32)


def _direction(angle, side):
  """Unit vector `(y, x)` at `angle` from straight down, opening towards `side` (+1 right)."""
  return np.stack([np.cos(angle), side * np.sin(angle)], -1)


# ----------------------------------------------------------------------------------------------
# synth3a
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Synth3aArgs:
  """Arguments of `synth3a` and `synth3a_spec`.

  seed: every random stream. frame_size / crop_margin: frames and the crop margin (model input
  `frame_size - crop_margin`). frames_per_primitive: a primitive's length at tempo 1.
  num_subjects: subjects (27 videos each). noise_std: pixel noise. tempo_ratio: slowest /
  fastest subject tempo (`subject_speed`). subject_spread: how far subjects differ in position,
  size, proportions and movement style (`widen`; 1 = the default ranges, 2 = twice as wide).
  min_cycles / max_cycles: repetitions of the primitive's movement per clip, uniform between
  them (default exactly 2); a clip lasts `frames_per_primitive * cycles / 2` frames at tempo 1,
  so the motion per frame does not change. clip_cuts: each clip starts at a uniformly random
  point of its cycle and the one-hand-wave's arm stays up (no raise / lower), so primitives meet
  at cuts as the real 3ACWD's clips do, not in the rest pose. reuse_clips: one clip per
  (subject, primitive), as the real 3ACWD has: timing (cycles, phase, jitter) is drawn per
  subject and primitive, position, amplitude and brightness per subject, so a subject's videos
  differ only in the order of the same three clips (and in pixel noise, drawn per video).
  clips_per_primitive: with reuse_clips, k clips per (subject, primitive) instead of one (1 to
  27): a subject's slots of a primitive use its k clips in turn (video order, then slot order),
  so each is used 27/k times (rounded); k = 1 is the real 3ACWD.
  """

  seed: int = 0
  frame_size: int = 36
  crop_margin: int = 4
  frames_per_primitive: int = 7
  num_subjects: int = 9
  noise_std: float = 0.02
  tempo_ratio: float = 2.0
  subject_spread: float = 1.0
  min_cycles: float = 2.0
  max_cycles: float = 2.0
  clip_cuts: bool = False
  reuse_clips: bool = False
  clips_per_primitive: int = 1

  def __post_init__(self):
    if not self.subject_spread > 0:
      raise ArgError(
        'subject_spread', f'subject_spread={self.subject_spread} must be > 0 (1 = the default).'
      )
    if not 0 < self.min_cycles <= self.max_cycles:
      raise ArgError(
        'min_cycles' if self.min_cycles <= 0 else 'max_cycles',
        f'synth3a needs 0 < min_cycles <= max_cycles, got min_cycles={self.min_cycles}, '
        f'max_cycles={self.max_cycles} (set both, e.g. 1.5 and 3.5).',
      )
    if not 1 <= self.clips_per_primitive <= len(SYNTH3A_CLASSES):
      raise ArgError(
        'clips_per_primitive',
        f'clips_per_primitive={self.clips_per_primitive} must be in 1..{len(SYNTH3A_CLASSES)} '
        '(clips per subject and primitive; 1 = one clip, as the real 3ACWD has).',
      )
    if self.clips_per_primitive > 1 and not self.reuse_clips:
      raise ArgError(
        'clips_per_primitive',
        f'clips_per_primitive={self.clips_per_primitive} needs reuse_clips=True (without it '
        'every slot has a fresh clip).',
      )


def _first_video(subjects: np.ndarray) -> np.ndarray:
  """`[num_videos]` index of the first video of each video's subject (subjects 0..S-1)."""
  return np.unique(subjects, return_index=True)[1][subjects]


def _clip_index(subjects: np.ndarray, primitive: np.ndarray, k: int) -> np.ndarray:
  """`[n, 3]` which of its subject's `k` clips of that primitive each slot shows: the slots of
  one (subject, primitive), in video order then slot order, take clips 0, 1, .., k-1, 0, ..."""
  key = (subjects[:, None] * len(PRIMITIVES) + primitive).ravel()
  order = np.argsort(key, kind='stable')  # slots grouped by key, in video-then-slot order
  rank = np.empty_like(order)
  starts = np.searchsorted(key[order], key[order])  # first position of each slot's key
  rank[order] = np.arange(key.size) - starts
  return (rank % k).reshape(primitive.shape)


def _per_clip(
  values: np.ndarray, subjects: np.ndarray, primitive: np.ndarray, k: int = 1
) -> np.ndarray:
  """`[n, 3]` per-slot draws -> one value per (subject, primitive, clip): clip `c` of primitive
  `p` is slot `p` of the subject's `c`-th video, wherever that clip appears (:func:`_clip_index`)."""
  return values[_first_video(subjects)[:, None] + _clip_index(subjects, primitive, k), primitive]


def _synth3a_plan(a: Synth3aArgs) -> dict:
  """Everything about synth3a except pixels: labels, subjects, timing, per-clip jitter."""
  people = sample_people(np.random.default_rng([a.seed, _PEOPLE]), a.num_subjects)
  people = widen(people, a.subject_spread)
  triples = np.array(list(itertools.product(range(3), repeat=3)), np.int32)  # class order
  subjects = np.repeat(np.arange(a.num_subjects, dtype=np.int32), len(triples))
  labels = np.tile(np.arange(len(triples), dtype=np.int32), a.num_subjects)
  n = len(subjects)
  rng = np.random.default_rng([a.seed, _TIMING])
  jitter = rng.uniform(0.95, 1.05, (n, 3))
  speed = subject_speed(people, a.tempo_ratio)
  cycle_rng = np.random.default_rng([a.seed, _CYCLES])  # its own stream: timing above unchanged
  cycles = cycle_rng.uniform(a.min_cycles, a.max_cycles, (n, 3))
  start = cycle_rng.uniform(0, 1, (n, 3)) if a.clip_cuts else np.zeros((n, 3))
  primitive = triples[labels]
  if a.reuse_clips:  # the same draws, then k clips per (subject, primitive)
    jitter, cycles, start = (
      _per_clip(x, subjects, primitive, a.clips_per_primitive) for x in (jitter, cycles, start)
    )
  durations = np.round(a.frames_per_primitive * speed[subjects, None] * jitter * (cycles / 2))
  durations = np.maximum(durations, 2).astype(np.int32)
  lengths, seg, u = timeline(durations)
  return dict(
    cycles=cycles.astype(np.float32),
    start=start.astype(np.float32),
    clip_cuts=a.clip_cuts,
    reuse_clips=a.reuse_clips,
    people=people,
    subjects=subjects,
    labels=labels,
    primitive=primitive,
    lengths=lengths,
    seg=seg,
    u=u,
  )


def _per_subject(plan: dict, values: np.ndarray) -> np.ndarray:
  """Per-video draws `[n, ...]`; with `reuse_clips`, each replaced by its subject's first video's."""
  return values[_first_video(plan['subjects'])] if plan['reuse_clips'] else values


def _synth3a_shapes(plan: dict, size: int, rng: np.random.Generator) -> list:
  """The figure of every video as a list of render shapes (pixel units)."""
  p, s = plan['people'], plan['subjects']
  n, t = plan['u'].shape
  u = plan['u']
  prim = np.take_along_axis(plan['primitive'], plan['seg'], 1)  # [n, t]
  # Position in the movement, in cycles: start + cycles * u (default 2 u, from the rest pose).
  cyc = (
    np.take_along_axis(plan['start'], plan['seg'], 1)
    + np.take_along_axis(plan['cycles'], plan['seg'], 1) * u
  )
  k = (p['scale'][s] * size)[:, None]  # body scale in pixels [n, 1]
  torso_l, leg_l, uarm_l, farm_l, head_f, girth = (
    p['proportions'][s, i][:, None] for i in range(6)
  )
  torso_l, leg_l = 0.22 * k * torso_l, 0.16 * k * leg_l  # leg_l: thigh == shin
  uarm_l, farm_l = 0.13 * k * uarm_l, 0.12 * k * farm_l
  head_r = 0.065 * k * head_f
  limb_r = np.maximum(0.03 * k * girth, 0.6)
  amp = (p['amp'][s] * _per_subject(plan, rng.uniform(0.9, 1.1, n)))[:, None]
  phase = p['phase'][s][:, None]
  x0 = (p['x'][s] + _per_subject(plan, rng.uniform(-0.02, 0.02, n)))[:, None] * size
  ground = (p['ground'][s] + _per_subject(plan, rng.uniform(-0.01, 0.01, n)))[:, None] * size
  rest = p['rest_arm'][s][:, None]

  # Jump-in-place: crouch, take off, land, once per cycle.
  w = -np.sin(2 * np.pi * cyc)
  jp = prim == 0
  lift = np.where(jp, 0.09 * k * amp * np.maximum(w, 0), 0.0)
  crouch = np.where(jp, 0.07 * k * amp * np.maximum(-w, 0), 0.0)
  jp_arm = rest + 0.9 * amp * np.maximum(w, 0)
  # One-hand-wave: raise the right arm overhead, wave the forearm once per cycle, lower it
  # (with clip_cuts the arm is up for the whole clip).
  env = 1.0 if plan['clip_cuts'] else smoothstep(u / 0.25) * smoothstep((1 - u) / 0.25)
  oh_up = rest + env * (2.3 + 0.3 * (amp - 1) - rest)
  oh_fore = oh_up + env * 0.75 * np.sin(2 * np.pi * cyc + phase)
  # Two-hand-wave: both straight arms sweep from the sides to overhead, once per cycle.
  th_up = rest + (2.6 + 0.3 * (amp - 1) - rest) * 0.5 * (1 - np.cos(2 * np.pi * cyc))

  right_up = np.select([prim == 0, prim == 1], [jp_arm, oh_up], th_up)  # image left
  right_fore = np.select([prim == 0, prim == 1], [jp_arm + 0.1, oh_fore], th_up + 0.1)
  left_up = np.select([prim == 0, prim == 1], [jp_arm, rest], th_up)  # image right
  left_fore = left_up + 0.1

  hip_y = ground - 2 * leg_l - lift + crouch
  hip = np.stack(np.broadcast_arrays(hip_y, x0), -1)
  neck = hip - np.stack(np.broadcast_arrays(torso_l, 0 * x0), -1)
  head = neck - np.stack(np.broadcast_arrays(0.6 * head_r + head_r, 0 * x0), -1)
  hair = head - np.stack(np.broadcast_arrays(0.35 * head_r, 0 * x0), -1)
  shoulder_w, hip_w = 0.08 * k * girth, 0.045 * k * girth
  stance = (p['stance'][s] * size)[:, None]

  def yx(y, x):
    return np.stack(np.broadcast_arrays(y, x), -1)

  shapes = []
  leg_r = limb_r * 1.2
  for side in (-1, 1):
    hj = hip + yx(0 * hip_y, side * hip_w)
    foot = yx(ground - lift - 0.5 * leg_r, x0 + side * (hip_w + stance))
    mid = 0.5 * (hj + foot)
    half = np.linalg.norm(foot - hj, axis=-1)[..., None] / 2
    bend = np.sqrt(np.maximum(leg_l[..., None] ** 2 - half**2, 0))
    knee = mid + yx(0 * hip_y, side * bend[..., 0])
    shapes += [
      render.Capsule(hj, knee, leg_r, p['trousers'][s]),
      render.Capsule(knee, foot, leg_r, p['trousers'][s]),
    ]
  shapes.append(render.Capsule(hip, neck + yx(0.03 * k, 0 * x0), 0.085 * k * girth, p['shirt'][s]))
  shapes.append(render.Capsule(neck - yx(0.03 * k, 0 * x0), neck, 0.07 * k * girth, p['shirt'][s]))
  shapes.append(render.Capsule(hair, hair, 0.95 * head_r, p['hair'][s]))
  shapes.append(render.Capsule(head, head, head_r, p['skin'][s]))
  sleeve = np.where(p['long_sleeves'][s, None], p['shirt'][s], p['skin'][s])
  for side, up, fore in ((-1, right_up, right_fore), (1, left_up, left_fore)):
    sh = neck + yx(0.025 * k, side * shoulder_w)
    elbow = sh + uarm_l[..., None] * _direction(up, side)
    hand = elbow + farm_l[..., None] * _direction(fore, side)
    shapes += [
      render.Capsule(sh, elbow, limb_r, p['shirt'][s]),
      render.Capsule(elbow, hand, limb_r, sleeve),
      render.Capsule(hand, hand, limb_r * 1.35, p['skin'][s]),
    ]
  return shapes


def synth3a(**kwargs) -> Dataset:
  """3ACWD analogue: 27 ordered triples of JP/OH/TH, `num_subjects` x 27 videos.

  Keyword arguments: the fields of `Synth3aArgs`. Returns a `Dataset` with videos uint8
  `[num_subjects * 27, t_max, frame_size, frame_size, 3]`, head `('action', 27)`; class
  `9 a + 3 b + c` is primitives (a, b, c) in `PRIMITIVES` order.
  """
  a = make_args(Synth3aArgs, 'synth3a', kwargs)
  plan = _synth3a_plan(a)
  rng = np.random.default_rng([a.seed, _CLIP])
  shapes = _synth3a_shapes(plan, a.frame_size, rng)
  s = plan['subjects']
  bg = backgrounds(plan['people'], a.frame_size, plan['people']['ground'])[s]
  bg = bg * _per_subject(plan, rng.uniform(0.95, 1.05, (len(s), 1, 1, 1))).astype(np.float32)
  videos = render.render(
    bg, shapes, plan['u'].shape[1], a.noise_std, np.random.default_rng([a.seed, _NOISE])
  )
  return Dataset(
    name='synth3a',
    videos=repeat_last_frame(videos, plan['lengths']),
    lengths=plan['lengths'],
    labels={'action': plan['labels']},
    heads=(('action', 27),),
    class_names={'action': list(SYNTH3A_CLASSES)},
    subjects=s,
    subject_names=[f'subject{i}' for i in range(a.num_subjects)],
    crop_size=a.frame_size - a.crop_margin,
    source=f'synthetic (seed={a.seed})',
  )


def synth3a_spec(**kwargs) -> DatasetSpec:
  """`synth3a`'s spec without rendering (the same keyword arguments, `Synth3aArgs`)."""
  a = make_args(Synth3aArgs, 'synth3a_spec', kwargs)
  plan = _synth3a_plan(a)
  return DatasetSpec(
    name='synth3a',
    heads=(('action', 27),),
    class_names={'action': list(SYNTH3A_CLASSES)},
    frame_size=(a.frame_size, a.frame_size),
    crop_size=a.frame_size - a.crop_margin,
    t_max=int(plan['lengths'].max()),
    num_subjects=a.num_subjects,
    num_videos=len(plan['subjects']),
    synthetic=True,
    description='synthetic 3ACWD analogue: jump-in-place / one-hand-wave / '
    'two-hand-wave, 27 ordered triples',
  )
