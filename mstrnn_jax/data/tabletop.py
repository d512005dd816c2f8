"""Synthetic table-top scenes: the CL1AD and CL2AD analogues (synthetic, not the real videos).

A person sits behind a table (front view). One arm acts on the action-directed object (ADO);
a distractor object (another type, random open/closed state) stands elsewhere on the table.
Every clip is reach -> act -> return to rest, with per-subject tempo (spread over a factor
`tempo_ratio`) and per-clip jitter. Each dataset takes one argument record (`Synthcl1Args`,
`Synthcl2Args`) shared by the generator and its `*_spec` function.

* `synthcl1` (CL1AD, paper Fig. 6): objects book, laptop, bottle, cup; 9 actions; 15 categories.
  Per subject and category 6 videos: each of the 3 other objects is the distractor twice, once
  open and once closed (as in the paper).
* `synthcl2` (CL2AD, paper Fig. 9): objects book, box, cup, spray; actions move, drag, touch,
  sweep; modifiers to_left, to_right, to_front, to_back, 2_times, 3_times; the 42 triplets of
  `SYNTHCL2_TRIPLETS`; 2 videos per subject and triplet; the distractor type is random.
  With `count_timing='per_stroke'` (the default) every stroke of a touch or sweep takes the
  subject's stroke time, so the act of "3 times" lasts 1.5x as long as that of "2 times", as when
  people act naturally (the paper's subjects "generated each action naturally"); the count shows
  both in the number of strokes and in how long the act lasts next to the subject's tempo,
  never in a single frame. `count_timing='equal_total'` (the generator before 2026-12-02) makes
  both counts last equally long (N strokes in the same time).

Geometry is in fractions of the frame size (y down), converted to pixels at render time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mstrnn_jax.data import render
from mstrnn_jax.data.dataset import Dataset, DatasetSpec, repeat_last_frame
from mstrnn_jax.data.synthetic import (
  backgrounds,
  make_args,
  sample_people,
  smoothstep,
  subject_speed,
  timeline,
)
from mstrnn_jax.errors import ArgError

CL1_OBJECTS = ('book', 'laptop', 'bottle', 'cup')
CL1_ACTIONS = ('sweep', 'open', 'close', 'change_page', 'type', 'drink', 'shake', 'stir', 'blow')
CL1_CATEGORIES = (  # paper Fig. 6
    ("book", "sweep"), ("book", "open"), ("book", "close"), ("book", "change_page"),
    ("laptop", "sweep"), ("laptop", "open"), ("laptop", "close"), ("laptop", "type"),
    ("bottle", "open"), ("bottle", "close"), ("bottle", "drink"), ("bottle", "shake"),
    ("cup", "drink"), ("cup", "stir"), ("cup", "blow"),
)  # fmt: skip
CL2_OBJECTS = ('book', 'box', 'cup', 'spray')
CL2_ACTIONS = ('move', 'drag', 'touch', 'sweep')
CL2_MODIFIERS = ('to_left', 'to_right', 'to_front', 'to_back', '2_times', '3_times')
_DIRECTIONS = CL2_MODIFIERS[:4]
_COUNTS = CL2_MODIFIERS[4:]
# Our table of the 42 CL2AD-like triplets (the paper's Fig. 9 is not available as text):
# move/drag take a direction, touch/sweep a count; cups are not dragged, sprays not swept.
SYNTHCL2_TRIPLETS = tuple(
  (o, a, m)
  for o in CL2_OBJECTS
  for a in CL2_ACTIONS
  for m in (_DIRECTIONS if a in ('move', 'drag') else _COUNTS)
  if not (o == 'cup' and a == 'drag') and not (o == 'spray' and a == 'sweep')
)
assert len(SYNTHCL2_TRIPLETS) == 42

# Objects that open (state 1 = open); others ignore the state.
_OPENABLE = ('book', 'laptop', 'bottle')
_OBJECT_COLOURS = {
    "book": (0.78, 0.16, 0.14), "laptop": (0.22, 0.22, 0.25), "bottle": (0.12, 0.55, 0.32),
    "cup": (0.96, 0.92, 0.78), "box": (0.66, 0.45, 0.24), "spray": (0.18, 0.32, 0.82),
}  # fmt: skip
_GRIP = {  # where the hand holds each object (local offset from its bottom centre)
    "book": (-0.05, 0.0), "laptop": (-0.03, 0.0), "bottle": (-0.09, 0.0), "cup": (-0.05, 0.0),
    "box": (-0.07, 0.0), "spray": (-0.1, 0.0),
}  # fmt: skip
_TOP = {'book': 0.06, 'laptop': 0.04, 'bottle': 0.2, 'cup': 0.09, 'box': 0.11, 'spray': 0.2}
_SALT_PLAN, _SALT_CLIP, _SALT_NOISE = 21, 22, 23
_ARM = 0.24  # upper arm == forearm length
_SIZE = 1.6  # object size factor
# A clip's act runs from u = r1 to u = r2 (fractions of its length), drawn per clip from these.
_ACT_START, _ACT_END = (0.2, 0.3), (0.72, 0.8)


def _p(y, x):
  """Stacks `(y, x)` into `[..., 2]` with broadcasting."""
  return np.stack(np.broadcast_arrays(y, x), -1).astype(np.float32)


def _rot(offset, angle):
  """Rotates local offsets `[..., 2]` by `angle` (counter-clockwise on screen, y down)."""
  oy, ox = offset[..., 0], offset[..., 1]
  c, s = np.cos(angle), np.sin(angle)
  return _p(oy * c - ox * s, ox * c + oy * s)


def _lerp(a, b, w):
  return a + (b - a) * np.asarray(w)[..., None]


def _elbow(shoulder, hand, side):
  """Two-segment arm: elbow position bending outward/down; hand clipped to the reach."""
  d = hand - shoulder
  dist = np.linalg.norm(d, axis=-1, keepdims=True)
  unit = d / np.maximum(dist, 1e-6)
  dist = np.minimum(dist, 2 * _ARM * 0.999)
  hand = shoulder + unit * dist
  pref = _p(1.0 + 0 * side, 0.7 * side)  # preferred elbow direction: down and outward
  perp = pref - (pref * unit).sum(-1, keepdims=True) * unit
  perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-6)
  bend = np.sqrt(np.maximum(_ARM**2 - (dist / 2) ** 2, 0.0))
  return shoulder + unit * dist / 2 + perp * bend, hand


def _object_parts(kind, state, flip):
  """Local parts of object `kind`: list of (offset [.., 2], half [.., 2], colour, opacity)."""
  col = np.array(_OBJECT_COLOURS[kind], np.float32)
  one = np.ones_like(state)
  if kind == 'book':
    w = 0.075 * (1 + state)
    page = np.cos(np.pi * flip)
    return [
      (_p(-0.03 + 0 * w, 0.0), _p(0.03 - 0.01 * state, w), col, one),
      (_p(-0.032 + 0 * w, 0.0), _p(0.018 + 0 * w, w - 0.012), (0.97, 0.97, 0.94), state),
      (_p(-0.032 + 0 * w, 0.0), _p(0.02 + 0 * w, 0.006), (0.3, 0.2, 0.2), state),
      (
        _p(-0.035 - 0.05 * np.sin(np.pi * flip), 0.07 * page),
        _p(0.02 + 0 * w, 0.07 * np.abs(page) + 0.006),
        (0.55, 0.62, 0.8),
        state * ((flip > 0) & (flip < 1)),
      ),
    ]
  if kind == 'laptop':
    lid = 0.008 + 0.07 * state
    return [
      (_p(-0.018 + 0 * state, 0.0), _p(0.018 + 0 * state, 0.1), col, one),
      (_p(-0.036 - lid, 0.0), _p(lid, 0.1), (0.68, 0.7, 0.74), one),
      (_p(-0.036 - lid, 0.0), _p(lid - 0.012, 0.085), (0.25, 0.5, 0.95), state),
    ]
  if kind == 'bottle':
    return [
      (_p(-0.075 + 0 * state, 0.0), _p(0.075 + 0 * state, 0.032), col, one),
      (_p(-0.08 + 0 * state, 0.0), _p(0.022 + 0 * state, 0.033), (0.95, 0.95, 0.9), one),
      (_p(-0.17 + 0 * state, 0.0), _p(0.025 + 0 * state, 0.016), col * 1.3, one),
    ]
  if kind == 'cup':
    return [
      (_p(-0.045 + 0 * state, 0.0), _p(0.045 + 0 * state, 0.04), col, one),
      (_p(-0.05 + 0 * state, 0.05), _p(0.022 + 0 * state, 0.013), col * 0.85, one),
      (_p(-0.082 + 0 * state, 0.0), _p(0.007 + 0 * state, 0.035), (0.35, 0.2, 0.1), one),
    ]
  if kind == 'box':
    return [
      (_p(-0.055 + 0 * state, 0.0), _p(0.055 + 0 * state, 0.06), col, one),
      (_p(-0.055 + 0 * state, 0.0), _p(0.055 + 0 * state, 0.01), (0.92, 0.85, 0.6), one),
    ]
  if kind == 'spray':
    return [
      (_p(-0.085 + 0 * state, 0.0), _p(0.085 + 0 * state, 0.026), col, one),
      (_p(-0.185 + 0 * state, 0.0), _p(0.018 + 0 * state, 0.02), (0.95, 0.95, 0.95), one),
      (_p(-0.2 + 0 * state, 0.022), _p(0.007 + 0 * state, 0.012), (0.1, 0.1, 0.1), one),
    ]
  raise ValueError(f'unknown object {kind!r}')


def _object_shapes(objects, kinds, obj, size):
  """Render shapes of one object slot. `kinds` int `[videos]` indexes `objects`."""
  shapes = []
  for k, kind in enumerate(objects):
    show = (kinds == k)[:, None]
    if not show.any():
      continue
    for offset, half, col, op in _object_parts(kind, obj['state'], obj['flip']):
      centre = obj['c'] + _rot(offset * obj['scale'][..., None], obj['ang'])
      colour = np.clip(np.asarray(col, np.float32) * obj['tint'][:, None], 0, 1)
      shapes.append(
        render.Box(
          centre * size,
          half * obj['scale'][..., None] * size,
          obj['ang'],
          colour,
          show * np.broadcast_to(op, obj['state'].shape),
        )
      )
    if kind == 'bottle':  # the cap is its own body: on the bottle, on the table, or in the hand
      shapes.append(
        render.Box(
          obj['cap'] * size,
          _p(0.015, 0.02) * obj['scale'][..., None] * size,
          obj['cap_ang'],
          (0.85, 0.2, 0.1),
          show * np.ones_like(obj['state']),
        )
      )
  return shapes


def _scene_layout(rng, people, subjects):
  """Person and table placement per video (fractions of the frame)."""
  n = len(subjects)
  px = people['x'][subjects] * 0.6 + 0.2 + rng.uniform(-0.015, 0.015, n)  # in [0.43, 0.57]
  table = people['ground'][subjects] - 0.33 + rng.uniform(-0.01, 0.01, n)  # in [0.51, 0.57]
  return px.astype(np.float32), table.astype(np.float32)


def _place_objects(rng, px, table, n, min_gap=0.3):
  """ADO and distractor positions (bottom centres) and the acting side (+1: right)."""
  side = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
  ado = _p(rng.uniform(table + 0.14, 0.78), px + side * rng.uniform(0.12, 0.26, n))
  cand = rng.uniform(0.1, 0.9, (n, 16))
  ok = np.abs(cand - ado[:, None, 1]) >= min_gap
  dx = cand[np.arange(n), np.argmax(ok, 1)]
  dis = _p(rng.uniform(table + 0.14, 0.78), dx)
  return side, ado, dis


def _depth_scale(y):
  return (_SIZE * np.clip(1 + 1.5 * (y - 0.7), 0.85, 1.15)).astype(np.float32)


def _static_object(c0, state, t, rng):
  """An object resting at bottom centre `c0` `[videos, 2]` with open state `state` `[videos]`."""
  n = len(c0)
  c = np.broadcast_to(c0[:, None], (n, t, 2)).astype(np.float32)
  scale = _depth_scale(c[..., 0])
  cap_on = c + _p(-0.21, 0.0) * scale[..., None]
  cap_off = c + _p(-0.015, 0.09) * scale[..., None]
  st = np.broadcast_to(np.asarray(state, np.float32)[:, None], (n, t))
  return dict(
      c=c, ang=np.zeros((n, t), np.float32), scale=scale, state=st,
      flip=np.zeros((n, t), np.float32), cap=_lerp(cap_on, cap_off, st),
      cap_ang=np.zeros((n, t), np.float32), tint=rng.uniform(0.9, 1.1, n).astype(np.float32),
  )  # fmt: skip


def _person_shapes(people, subjects, px, table, head_dy, hands, sides, size):
  """Torso, head and two arms. hands: `[videos, time, 2]` per arm; sides: +-1 per arm."""
  s = subjects
  k = people['scale'][s][:, None] / 0.9
  t = hands[0].shape[1]
  px2 = px[:, None]
  neck_y = (0.33 + 0 * px2) * np.ones((1, t))
  head = _p(neck_y - 0.09 * k + head_dy, px2 + 0 * neck_y)
  torso = 0.5 * (table[:, None] - neck_y)
  shapes = [
      render.Box(_p(neck_y + torso, px2) * size, _p(torso, 0.085 * k) * size, 0.0,
                 people["shirt"][s]),
      render.Capsule(head * size, head * size, 0.065 * k * size, people["hair"][s]),
      render.Capsule((head + _p(0.013, 0.0)) * size, (head + _p(0.013, 0.0)) * size,
                     0.059 * k * size, people["skin"][s]),
  ]  # fmt: skip
  sleeve = np.where(people['long_sleeves'][s, None], people['shirt'][s], people['skin'][s])
  limb = max(0.028 * size, 0.7)
  for hand, side in zip(hands, sides):
    shoulder = _p(neck_y + 0.03, px2 + side[:, None] * 0.085 * k)
    elbow, hand = _elbow(shoulder, hand, side[:, None])
    shapes += [
      render.Capsule(shoulder * size, elbow * size, limb, people['shirt'][s]),
      render.Capsule(elbow * size, hand * size, limb, sleeve),
      render.Capsule(hand * size, hand * size, limb * 1.4, people['skin'][s]),
    ]
  return shapes


def _phases(u, r1, r2):
  """Act progress v and the weight of the rest pose (reach / return) per frame."""
  v = np.clip((u - r1[:, None]) / (r2 - r1)[:, None], 0, 1)
  w = np.where(
    u < r1[:, None],
    1 - smoothstep(u / r1[:, None]),
    np.where(u >= r2[:, None], smoothstep((u - r2[:, None]) / (1 - r2)[:, None]), 0.0),
  )
  return v.astype(np.float32), w.astype(np.float32)


def _grip(obj, kinds, objects):
  local = np.array([_GRIP[o] for o in objects], np.float32)[kinds][:, None]
  return obj['c'] + _rot(local * obj['scale'][..., None], obj['ang'])


def _top(c, kinds, objects, scale):
  h = np.array([_TOP[o] for o in objects], np.float32)[kinds][:, None]
  return c - _p(h * scale, 0.0)


# ----------------------------------------------------------------------------------------------
# synthcl1
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Synthcl1Args:
  """Arguments of `synthcl1` and `synthcl1_spec`.

  frames_per_video: a clip's length at tempo 1; videos_per_category: per subject (6 as in the
  paper); tempo_ratio: slowest / fastest subject tempo; the rest as in `Synth3aArgs`.
  """

  seed: int = 0
  frame_size: int = 36
  crop_margin: int = 4
  frames_per_video: int = 20
  num_subjects: int = 10
  videos_per_category: int = 6
  noise_std: float = 0.02
  tempo_ratio: float = 2.0


def _cl1_plan(a: Synthcl1Args):
  seed, num_subjects, videos_per_category = a.seed, a.num_subjects, a.videos_per_category
  people = sample_people(np.random.default_rng([seed, _SALT_PLAN]), num_subjects)
  n_cat = len(CL1_CATEGORIES)
  per_subject = n_cat * videos_per_category
  subjects = np.repeat(np.arange(num_subjects, dtype=np.int32), per_subject)
  category = np.tile(np.repeat(np.arange(n_cat), videos_per_category), num_subjects)
  ado = np.array([CL1_OBJECTS.index(o) for o, _ in CL1_CATEGORIES], np.int32)[category]
  action = np.array([CL1_ACTIONS.index(act) for _, act in CL1_CATEGORIES], np.int32)[category]
  # Distractors: the 3 other objects, each in two videos (open, closed), cycling.
  j = np.tile(np.arange(videos_per_category), num_subjects * n_cat)
  distractor = (ado + 1 + (j // 2) % 3) % 4
  distractor_state = (j % 2).astype(np.float32)
  rng = np.random.default_rng([seed, _SALT_PLAN + 100])
  n = len(subjects)
  durations = np.round(
    a.frames_per_video * subject_speed(people, a.tempo_ratio)[subjects] * rng.uniform(0.95, 1.05, n)
  ).astype(np.int32)[:, None]
  lengths, _, u = timeline(np.maximum(durations, 4))
  return dict(
      people=people, subjects=subjects, ado=ado, action=action, distractor=distractor,
      distractor_state=distractor_state, lengths=lengths, u=u,
  )  # fmt: skip


def _cl1_scene(plan, rng):
  """ADO/distractor/hand trajectories (fractions) for every video of synthcl1."""
  people, s, u = plan['people'], plan['subjects'], plan['u']
  n, t = u.shape
  px, table = _scene_layout(rng, people, s)
  side, c0, d0 = _place_objects(rng, px, table, n)
  amp = people['amp'][s][:, None]
  r1, r2 = rng.uniform(*_ACT_START, n), rng.uniform(*_ACT_END, n)
  v, w = _phases(u, r1, r2)
  act, kind = plan['action'], plan['ado']
  a = lambda name: (act == CL1_ACTIONS.index(name))[:, None]
  o = lambda name: (kind == CL1_OBJECTS.index(name))[:, None]
  sm = smoothstep(v)

  opens = np.where(a('open'), sm, np.where(a('close'), 1 - sm, 0.0))
  start_state = np.where(
    a('close') | a('change_page') | a('type') | (a('drink') & o('bottle')), 1.0, 0.0
  )
  state = np.where(a('open') | a('close'), opens, start_state)
  obj = _static_object(c0, np.zeros(n), t, rng)
  obj['state'] = np.where(o('cup'), 0.0, state).astype(np.float32)
  c = obj['c']
  scale = obj['scale']

  # sweep: push the object sideways (towards the middle of the table)
  sweep_dir = np.where(c0[:, 1] > 0.5, -1.0, 1.0)[:, None]
  c_sweep = c + _p(0.0, sweep_dir * 0.2 * amp * sm)
  # drink / blow / shake: lift the object (lift envelope `env`)
  env = smoothstep(v / 0.3) * smoothstep((1 - v) / 0.3)
  mouth = _p(0.23 + 0 * v, px[:, None] + side[:, None] * 0.04)
  grip_local = np.array([_GRIP[x] for x in CL1_OBJECTS], np.float32)[kind][:, None]
  to_mouth = mouth + _p(0.05, side[:, None] * 0.06) - (c + grip_local * scale[..., None])
  to_chest = mouth + _p(0.17, side[:, None] * 0.05) - (c + grip_local * scale[..., None])
  shake_x = 0.05 * amp * np.sin(2 * np.pi * 3 * v) * env
  c_lift = np.where(
    a('drink')[..., None],
    c + to_mouth * env[..., None],
    np.where(
      a('blow')[..., None],
      c + to_chest * env[..., None],
      c + _p(-0.12 * env, shake_x),
    ),
  )
  tilt = smoothstep((v - 0.3) / 0.15) * smoothstep((0.7 - v) / 0.15)
  moving = a('sweep') | a('drink') | a('blow') | a('shake')
  obj['c'] = np.where(a('sweep')[..., None], c_sweep, np.where(moving[..., None], c_lift, c))
  obj['ang'] = np.where(a('drink'), side[:, None] * 1.1 * tilt, 0.0).astype(np.float32)
  obj['flip'] = np.where(a('change_page'), sm, 0.0).astype(np.float32)
  # bottle cap: on the bottle (closed) or on the table (open); carried while opening/closing
  cap_on = obj['c'] + _rot(_p(-0.21, 0.0) * scale[..., None], obj['ang'])
  cap_off = c + _p(-0.015, side[:, None] * 0.09) * scale[..., None]
  lift = _p(-0.07 * np.sin(np.pi * v), 0.0)
  carry = _lerp(cap_on, cap_off, smoothstep((opens - 0.3) / 0.4)) + lift
  bottle_oc = o('bottle') & (a('open') | a('close'))
  obj['cap'] = np.where(bottle_oc[..., None], carry, _lerp(cap_on, cap_off, obj['state'])).astype(
    np.float32
  )
  obj['cap_ang'] = np.where(bottle_oc, 0.0, obj['ang']).astype(np.float32)

  # the hand during the act
  grip = _grip(obj, kind, CL1_OBJECTS)
  sc = scale[..., None]
  edge = c + sc * _p(-0.05 - 0.04 * np.sin(np.pi * v), -side[:, None] * 0.075 * (1 + obj['state']))
  lid = c + sc * _p(-0.05 - 0.14 * obj['state'], -side[:, None] * 0.06)
  page = c + sc * _p(-0.07 - 0.05 * np.sin(np.pi * sm), 0.14 * np.cos(np.pi * sm))
  typing = c + sc * _p(
    -0.06 + 0.025 * np.abs(np.sin(2 * np.pi * 2 * v)), 0.04 * np.sin(2 * np.pi * v)
  )
  top = _top(obj['c'], kind, CL1_OBJECTS, scale)
  stir = top + sc * _p(
    -0.02 + 0.012 * np.cos(2 * np.pi * 3 * v), 0.03 * amp * np.sin(2 * np.pi * 3 * v)
  )
  push = obj['c'] + sc * _p(-0.04, -sweep_dir * 0.11)
  hand_act = np.select(
      [a("sweep")[..., None], (a("open") | a("close"))[..., None] & o("book")[..., None],
       (a("open") | a("close"))[..., None] & o("laptop")[..., None], bottle_oc[..., None],
       a("change_page")[..., None], a("type")[..., None], a("stir")[..., None]],
      [push, edge, lid, obj["cap"] + _p(-0.02, 0.0), page, typing, stir],
      grip,
  )  # fmt: skip
  rest = _p(table[:, None] + 0.16, px[:, None] + side[:, None] * 0.2) + 0 * hand_act
  hand = _lerp(hand_act, rest, w) + _p(-0.06 * np.sin(np.pi * w), 0.0)
  idle = _p(table[:, None] + 0.16 + 0 * v, px[:, None] - side[:, None] * 0.2)
  extras = dict(
    spoon=(hand, top + _p(0.045, 0.0), np.where(a('stir'), (v > 0) & (v < 1), 0.0)),
    puff=(mouth + _p(0.02, 0.0), to_chest + c, np.where(a('blow'), env, 0.0), v),
    head_dy=np.where(a('blow'), 0.03 * env, 0.0),
  )
  distractor = _static_object(d0, plan['distractor_state'], t, rng)
  return dict(px=px, table=table, side=side, obj=obj, distractor=distractor, hand=hand,
              idle=idle, extras=extras)  # fmt: skip


def _extras_shapes(extras, size):
  shapes = []
  if 'spoon' in extras:
    a, b, op = extras['spoon']
    shapes.append(render.Capsule(a * size, b * size, max(0.012 * size, 0.5), (0.75, 0.75, 0.8),
                                 op.astype(np.float32)))  # fmt: skip
  if 'puff' in extras:
    mouth, cup, op, v = extras['puff']
    for i in range(2):
      q = (3 * v + i / 2) % 1.0
      pos = _lerp(mouth, cup, q)
      shapes.append(render.Capsule(pos * size, pos * size, max(0.02 * size, 0.6),
                                   (1.0, 1.0, 1.0), (op * 0.9).astype(np.float32)))  # fmt: skip
  return shapes


def _render_scene(plan, scene, objects, ado, distractor, size, noise_std, seed, rng):
  people, s = plan['people'], plan['subjects']
  n, t = plan['u'].shape
  bg = backgrounds(people, size, None)[s]
  g = (np.arange(size, dtype=np.float32) + 0.5) / size
  below = (g[None, :, None] > scene['table'][:, None, None])[..., None]
  table_col = people['floor'][s][:, None, None, :] * (
    1 + 0.04 * np.sin(40 * g)[None, None, :, None]
  )
  bg = np.where(below, table_col, bg) * rng.uniform(0.95, 1.05, (n, 1, 1, 1)).astype(np.float32)
  shapes = _person_shapes(
      people, s, scene["px"], scene["table"], scene["extras"]["head_dy"], [scene["hand"], scene["idle"]],
      [scene["side"], -scene["side"]], size,
  )  # fmt: skip
  arms = shapes[3:]
  shapes = shapes[:3]
  shapes += _object_shapes(objects, distractor, scene['distractor'], size)
  shapes += _object_shapes(objects, ado, scene['obj'], size)
  extras = {k: v for k, v in scene['extras'].items() if k != 'head_dy'}
  shapes += arms + _extras_shapes(extras, size)
  videos = render.render(bg.astype(np.float32), shapes, t, noise_std,
                         np.random.default_rng([seed, _SALT_NOISE]))  # fmt: skip
  return repeat_last_frame(videos, plan['lengths'])


def synthcl1(**kwargs) -> Dataset:
  """CL1AD analogue: heads ADO (4) and action (9), 15 categories (Fig. 6).

  Keyword arguments: the fields of `Synthcl1Args`. Returns videos uint8
  `[num_subjects * 15 * videos_per_category, t_max, frame_size, frame_size, 3]` (default 900).
  """
  a = make_args(Synthcl1Args, 'synthcl1', kwargs)
  plan = _cl1_plan(a)
  rng = np.random.default_rng([a.seed, _SALT_CLIP])
  scene = _cl1_scene(plan, rng)
  videos = _render_scene(plan, scene, CL1_OBJECTS, plan["ado"], plan["distractor"], a.frame_size,
                         a.noise_std, a.seed, rng)  # fmt: skip
  return Dataset(
      name="synthcl1", videos=videos, lengths=plan["lengths"],
      labels={"ado": plan["ado"], "action": plan["action"]}, heads=_CL1_HEADS,
      class_names={"ado": list(CL1_OBJECTS), "action": list(CL1_ACTIONS)},
      subjects=plan["subjects"], subject_names=[f"subject{i}" for i in range(a.num_subjects)],
      crop_size=a.frame_size - a.crop_margin, source=f"synthetic (seed={a.seed})",
  )  # fmt: skip


_CL1_HEADS = (('ado', len(CL1_OBJECTS)), ('action', len(CL1_ACTIONS)))


def synthcl1_spec(**kwargs) -> DatasetSpec:
  """`synthcl1`'s spec without rendering (the same keyword arguments, `Synthcl1Args`)."""
  a = make_args(Synthcl1Args, 'synthcl1_spec', kwargs)
  plan = _cl1_plan(a)
  return DatasetSpec(
      name="synthcl1", heads=_CL1_HEADS,
      class_names={"ado": list(CL1_OBJECTS), "action": list(CL1_ACTIONS)},
      frame_size=(a.frame_size, a.frame_size), crop_size=a.frame_size - a.crop_margin,
      t_max=int(plan["lengths"].max()), num_subjects=a.num_subjects,
      num_videos=len(plan["subjects"]), synthetic=True,
      description="synthetic CL1AD analogue: 15 object-action categories with a distractor",
  )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# synthcl2
# ----------------------------------------------------------------------------------------------

_CL2_HEADS = (
  ('ado', len(CL2_OBJECTS)),
  ('action', len(CL2_ACTIONS)),
  ('modifier', len(CL2_MODIFIERS)),
)
_DISPLACEMENT = {"to_left": (0.0, -0.2), "to_right": (0.0, 0.2), "to_front": (0.1, 0.0),
                 "to_back": (-0.1, 0.0)}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Synthcl2Args:
  """Arguments of `synthcl2` and `synthcl2_spec` (as `Synthcl1Args`; videos_per_triplet: per
  subject and triplet, 2 as in the paper; count_timing: one of `COUNT_TIMINGS`, see the module
  docstring; stroke_scale: factor on the size of a touch's lift and a sweep's swing, 1 = 0.08
  and 0.07 of the object's scale)."""

  seed: int = 0
  frame_size: int = 36
  crop_margin: int = 4
  frames_per_video: int = 22
  num_subjects: int = 10
  videos_per_triplet: int = 2
  noise_std: float = 0.02
  tempo_ratio: float = 2.0
  count_timing: str = 'per_stroke'
  stroke_scale: float = 1.0

  def __post_init__(self):
    if self.count_timing not in COUNT_TIMINGS:
      raise ArgError(
        'count_timing',
        f'count_timing={self.count_timing!r}; choose one of {", ".join(COUNT_TIMINGS)}.',
      )
    if not self.stroke_scale > 0:
      raise ArgError('stroke_scale', f'stroke_scale={self.stroke_scale} must be > 0.')


# 'per_stroke': each stroke takes the subject's stroke time (3 strokes last 1.5x as long as 2);
# 'equal_total': 2 and 3 strokes fill the same act phase.
COUNT_TIMINGS = ('per_stroke', 'equal_total')
_ACT_SHARE = np.mean(_ACT_END) - np.mean(_ACT_START)  # mean act phase r2 - r1 of a clip


def _act_stretch(a: Synthcl2Args, modifier: np.ndarray) -> np.ndarray:
  """Factor on each video's act phase: count / 2.5 for touch/sweep under 'per_stroke', else 1.

  A stroke then takes `_ACT_SHARE * frames_per_video / 2.5` frames at tempo 1 for both counts,
  and the mean length of the count videos stays `frames_per_video`.
  """
  stretch = np.ones(len(modifier), np.float32)
  if a.count_timing == 'per_stroke':
    for count, name in ((2, '2_times'), (3, '3_times')):
      stretch[modifier == CL2_MODIFIERS.index(name)] = count / 2.5
  return stretch


def _cl2_plan(a: Synthcl2Args):
  people = sample_people(np.random.default_rng([a.seed, _SALT_PLAN]), a.num_subjects)
  n_trip = len(SYNTHCL2_TRIPLETS)
  subjects = np.repeat(np.arange(a.num_subjects, dtype=np.int32), n_trip * a.videos_per_triplet)
  triplet = np.tile(np.repeat(np.arange(n_trip), a.videos_per_triplet), a.num_subjects)
  table = np.array(
      [(CL2_OBJECTS.index(o), CL2_ACTIONS.index(act), CL2_MODIFIERS.index(m))
       for o, act, m in SYNTHCL2_TRIPLETS], np.int32,
  )[triplet]  # fmt: skip
  rng = np.random.default_rng([a.seed, _SALT_PLAN + 200])
  n = len(subjects)
  distractor = (table[:, 0] + rng.integers(1, 4, n)) % 4
  stretch = _act_stretch(a, table[:, 2])
  durations = np.round(
    a.frames_per_video
    * subject_speed(people, a.tempo_ratio)[subjects]
    * rng.uniform(0.95, 1.05, n)
    * (1 + _ACT_SHARE * (stretch - 1))
  ).astype(np.int32)[:, None]
  lengths, _, u = timeline(np.maximum(durations, 4))
  return dict(
      people=people, subjects=subjects, ado=table[:, 0], action=table[:, 1],
      modifier=table[:, 2], distractor=distractor.astype(np.int32),
      distractor_state=(rng.random(n) < 0.5).astype(np.float32), lengths=lengths, u=u,
      act_stretch=stretch, stroke_scale=float(a.stroke_scale),
  )  # fmt: skip


def _cl2_scene(plan, rng):
  """ADO/distractor/hand trajectories (fractions) for every video of synthcl2."""
  people, s, u = plan['people'], plan['subjects'], plan['u']
  n, t = u.shape
  px, table = _scene_layout(rng, people, s)
  side, mid, d0 = _place_objects(rng, px, table, n)
  amp = people['amp'][s][:, None]
  r1, r2 = rng.uniform(*_ACT_START, n), rng.uniform(*_ACT_END, n)
  # A stretched act keeps the reach and return lasting as long (in frames) as unstretched.
  k = plan['act_stretch']
  total = 1 + (r2 - r1) * (k - 1)
  r1, r2 = np.where(k == 1, r1, r1 / total), np.where(k == 1, r2, (r1 + (r2 - r1) * k) / total)
  v, w = _phases(u, r1, r2)
  act, kind, mod = plan['action'], plan['ado'], plan['modifier']
  a = lambda name: (act == CL2_ACTIONS.index(name))[:, None]
  sm = smoothstep(v)

  disp = np.zeros((n, 2), np.float32)
  for name, d in _DISPLACEMENT.items():
    disp[mod == CL2_MODIFIERS.index(name)] = d
  disp *= (people['amp'][s] * rng.uniform(0.9, 1.1, n))[:, None]
  c0 = mid - disp / 2
  obj = _static_object(c0, np.zeros(n), t, rng)
  moves = a('move') | a('drag')
  on_table = obj['c'] + np.where(moves, sm, 0.0)[..., None] * disp[:, None]
  lift = np.where(a('move'), 0.12 * np.sin(np.pi * v), 0.0)
  obj['c'] = (on_table - _p(lift, 0.0)).astype(np.float32)
  obj['scale'] = _depth_scale(on_table[..., 0])
  sc = obj['scale'][..., None]
  count = np.where(mod == CL2_MODIFIERS.index('3_times'), 3, 2)[:, None]
  top = _top(obj['c'], kind, CL2_OBJECTS, obj['scale'])
  size = plan['stroke_scale']
  touch = top + sc * _p(-0.08 * size * (0.5 + 0.5 * np.cos(2 * np.pi * count * v)), 0.0)
  sweep = top + sc * _p(-0.01 + 0 * v, 0.07 * size * amp * np.sin(2 * np.pi * count * v))
  hand_act = np.select(
    [a('touch')[..., None], a('sweep')[..., None]], [touch, sweep], _grip(obj, kind, CL2_OBJECTS)
  )
  rest = _p(table[:, None] + 0.16, px[:, None] + side[:, None] * 0.2) + 0 * hand_act
  hand = _lerp(hand_act, rest, w) + _p(-0.06 * np.sin(np.pi * w), 0.0)
  idle = _p(table[:, None] + 0.16 + 0 * v, px[:, None] - side[:, None] * 0.2)
  distractor = _static_object(d0, plan['distractor_state'], t, rng)
  return dict(px=px, table=table, side=side, obj=obj, distractor=distractor, hand=hand,
              idle=idle, extras=dict(head_dy=np.zeros((n, t), np.float32)))  # fmt: skip


def synthcl2(**kwargs) -> Dataset:
  """CL2AD analogue: heads ADO (4), action (4), modifier (6); the 42 `SYNTHCL2_TRIPLETS`.

  Keyword arguments: the fields of `Synthcl2Args`. Returns videos uint8
  `[num_subjects * 42 * videos_per_triplet, t_max, frame_size, frame_size, 3]` (default 840).
  """
  a = make_args(Synthcl2Args, 'synthcl2', kwargs)
  plan = _cl2_plan(a)
  rng = np.random.default_rng([a.seed, _SALT_CLIP])
  scene = _cl2_scene(plan, rng)
  videos = _render_scene(plan, scene, CL2_OBJECTS, plan["ado"], plan["distractor"], a.frame_size,
                         a.noise_std, a.seed, rng)  # fmt: skip
  return Dataset(
      name="synthcl2", videos=videos, lengths=plan["lengths"],
      labels={"ado": plan["ado"], "action": plan["action"], "modifier": plan["modifier"]},
      heads=_CL2_HEADS, class_names=_cl2_class_names(), subjects=plan["subjects"],
      subject_names=[f"subject{i}" for i in range(a.num_subjects)],
      crop_size=a.frame_size - a.crop_margin, source=f"synthetic (seed={a.seed})",
  )  # fmt: skip


def _cl2_class_names():
  return {'ado': list(CL2_OBJECTS), 'action': list(CL2_ACTIONS), 'modifier': list(CL2_MODIFIERS)}


def synthcl2_spec(**kwargs) -> DatasetSpec:
  """`synthcl2`'s spec without rendering (the same keyword arguments, `Synthcl2Args`)."""
  a = make_args(Synthcl2Args, 'synthcl2_spec', kwargs)
  plan = _cl2_plan(a)
  return DatasetSpec(
      name="synthcl2", heads=_CL2_HEADS, class_names=_cl2_class_names(),
      frame_size=(a.frame_size, a.frame_size), crop_size=a.frame_size - a.crop_margin,
      t_max=int(plan["lengths"].max()), num_subjects=a.num_subjects,
      num_videos=len(plan["subjects"]), synthetic=True,
      description="synthetic CL2AD analogue: 42 object-action-modifier triplets with a distractor",
  )  # fmt: skip
