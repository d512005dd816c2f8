"""Input pipeline: datasets as in-memory arrays, LOSO folds, on-device cropping and tempo warps.

```python
ds = load_dataset("synth3a")                 # or synthcl1, synthcl2, weizmann_3acwd (3acwd), cl1ad, cl2ad
ds = load_dataset("folder:/my/videos", data_dir="data", frame_size=64, fps=10)   # your own videos
folds = loso_folds(ds)                       # one Fold per subject
folds = loso_folds(ds, folds=5)              # subjects grouped into 5 folds
x = random_crop(key, videos, ds.crop_size)   # inside the jitted train step
x = center_crop(videos, ds.crop_size)        # evaluation
videos = random_time_warp(key, videos, TempoWarp(1.4, 3))  # training: tempo augmentation (opt-in)
```
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax.data import synthetic, tabletop
from mstrnn_jax.data.dataset import Dataset, DatasetSpec
from mstrnn_jax.errors import ArgError

SYNTHETIC = {
  'synth3a': (synthetic.synth3a, synthetic.synth3a_spec),
  'synthcl1': (tabletop.synthcl1, tabletop.synthcl1_spec),
  'synthcl2': (tabletop.synthcl2, tabletop.synthcl2_spec),
}
# The argument record of each synthetic generator (its fields are the generator's and the
# spec's keyword arguments).
SYNTHETIC_ARGS = {
  'synth3a': synthetic.Synth3aArgs,
  'synthcl1': tabletop.Synthcl1Args,
  'synthcl2': tabletop.Synthcl2Args,
}
REAL = ('weizmann_3acwd', 'cl1ad', 'cl2ad')
ALIASES = {'3acwd': 'weizmann_3acwd'}
NAMES = tuple(SYNTHETIC) + REAL
FOLDER_PREFIX = 'folder:'  # folder:PATH, your own videos (data/folder.py)


def is_folder(name: str) -> bool:
  """True for `folder:PATH` (a dataset of your own videos)."""
  return isinstance(name, str) and name.startswith(FOLDER_PREFIX)


def canonical_name(name: str) -> str:
  """Resolves aliases (`3acwd` -> `weizmann_3acwd`); raises listing the valid names.

  `folder:PATH` (your own videos, see `data.folder`) is returned unchanged.
  """
  if is_folder(name):
    return name
  key = ALIASES.get(name.lower(), name.lower())
  if key not in NAMES:
    raise ValueError(
      f'unknown dataset {name!r}; valid names: {", ".join(NAMES)}, folder:PATH '
      f'(aliases: {", ".join(f"{a}={b}" for a, b in ALIASES.items())})'
    )
  return key


def default_data_dir() -> pathlib.Path:
  """`$MSTRNN_DATA_DIR`, else the source checkout's `data/`, else `./data`."""
  if os.environ.get('MSTRNN_DATA_DIR'):
    return pathlib.Path(os.environ['MSTRNN_DATA_DIR']).expanduser()
  checkout = pathlib.Path(__file__).resolve().parents[2] / 'data'
  return checkout if checkout.is_dir() else pathlib.Path.cwd() / 'data'


def dataset_spec(name: str, data_dir: Optional[str] = None, **kwargs) -> DatasetSpec:
  """Heads, class names, frame/crop size, T_max and counts without rendering or loading videos.

  `kwargs` are the synthetic generator's arguments (e.g. `frame_size`, `seed`) or, for the real
  datasets, `crop_margin` and builder options; for `folder:PATH` the options of
  `folder.load`. For a real dataset that is not prepared yet, `t_max` and `num_videos` are None.
  """
  key = canonical_name(name)
  if is_folder(key):
    from mstrnn_jax.data import folder

    return folder.spec(key, data_dir or default_data_dir(), **kwargs)
  if key in SYNTHETIC:
    return SYNTHETIC[key][1](**kwargs)
  from mstrnn_jax.data import builders

  return builders.spec(key, data_dir or default_data_dir(), **_real_kwargs(key, kwargs))


def load_dataset(name: str, data_dir: Optional[str] = None, **kwargs) -> Dataset:
  """Returns the whole dataset as arrays (see `Dataset`).

  Synthetic datasets are generated in memory (`kwargs`: generator arguments such as `seed`,
  `frame_size`, `crop_margin`). Real datasets are prepared once from the manual downloads
  under `<data_dir>/downloads/<name>/` into `<data_dir>` (TFDS array_record files) and then
  read back (`kwargs`: `crop_margin`, default 10 as in the paper; for weizmann_3acwd also
  `skip_incomplete_subjects`). `folder:PATH` is a folder of your own videos, prepared once
  into `<data_dir>/folder/` (`kwargs`: `frame_size`, `fps`, `frame_step`, `max_frames`,
  `skip_bad_clips`, `crop_margin`; see `data.folder`).
  """
  key = canonical_name(name)
  if is_folder(key):
    from mstrnn_jax.data import folder

    return folder.load(key, data_dir or default_data_dir(), **kwargs)
  if key in SYNTHETIC:
    return SYNTHETIC[key][0](**kwargs)
  from mstrnn_jax.data import builders

  return builders.load(key, data_dir or default_data_dir(), **_real_kwargs(key, kwargs))


def _real_kwargs(name: str, kwargs: dict) -> dict:
  from mstrnn_jax.data import builders

  valid = ['crop_margin', *builders.OPTIONS[name]]
  unknown = set(kwargs) - set(valid)
  if unknown:
    raise ValueError(
      f'{name} is a real dataset: it takes only {", ".join(valid)}, not '
      f'{", ".join(sorted(unknown))} '
      f'(generator arguments apply to {", ".join(SYNTHETIC)})'
    )
  return kwargs


class Fold(NamedTuple):
  """One held-out split: indices into the dataset's first axis.

  test_subject:  the held-out subject (plain LOSO), or the fold number with `folds=K`.
  test_subjects: the subjects held out (one for plain LOSO).
  """

  test_subject: int
  train_idx: np.ndarray
  test_idx: np.ndarray
  test_subjects: tuple = ()


def subject_groups(num_subjects: int, folds: Optional[int] = None) -> list:
  """Subjects `0..S-1` in `folds` contiguous, balanced groups (sizes differ by at most one);
  `folds=None` (or S): one subject per group."""
  if folds is None:
    folds = num_subjects
  if (
    isinstance(folds, bool)
    or not isinstance(folds, (int, np.integer))
    or not (2 <= folds <= num_subjects)
  ):
    raise ValueError(
      f'folds must be an integer in 2..{num_subjects} (the number of subjects), got {folds!r}'
    )
  return [tuple(int(s) for s in g) for g in np.array_split(np.arange(num_subjects), folds)]


def loso_folds(ds: Dataset, folds: Optional[int] = None) -> list:
  """One `Fold` per subject, in subject order (paper Sec. II.F); with `folds=K`, the subjects
  are grouped into K folds (`subject_groups`) and each fold holds out one group."""
  idx = np.arange(len(ds))
  if folds is None:
    return [Fold(s, idx[ds.subjects != s], idx[ds.subjects == s], (s,))
            for s in range(ds.num_subjects)]  # fmt: skip
  out = []
  for k, group in enumerate(subject_groups(ds.num_subjects, folds)):
    held = np.isin(ds.subjects, group)
    out.append(Fold(k, idx[~held], idx[held], group))
  return out


@functools.partial(jax.jit, static_argnames='size')
def random_crop(key: jax.Array, videos: jax.Array, size: int) -> jax.Array:
  """Random square crop, one offset per video shared by all its frames (training).

  Args:
    key: PRNG key.
    videos: `[batch, time, height, width, channels]`, any dtype.
    size: crop height == width (static).
  Returns:
    `[batch, time, size, size, channels]`.
  """
  chex.assert_rank(videos, 5)
  b, t, h, w, c = videos.shape
  if size > min(h, w):
    raise ValueError(f'crop size {size} is larger than the frames ({h}x{w})')
  ky, kx = jax.random.split(key)
  oy = jax.random.randint(ky, (b,), 0, h - size + 1)
  ox = jax.random.randint(kx, (b,), 0, w - size + 1)
  crop = lambda v, y, x: jax.lax.dynamic_slice(v, (0, y, x, 0), (t, size, size, c))
  return jax.vmap(crop)(videos, oy, ox)


@functools.partial(jax.jit, static_argnames='size')
def center_crop(videos: jax.Array, size: int) -> jax.Array:
  """Centre square crop (evaluation): `[batch, time, H, W, C] -> [batch, time, size, size, C]`."""
  chex.assert_rank(videos, 5)
  h, w = videos.shape[2:4]
  if size > min(h, w):
    raise ValueError(f'crop size {size} is larger than the frames ({h}x{w})')
  y, x = (h - size) // 2, (w - size) // 2
  return videos[:, :, y : y + size, x : x + size]


@dataclasses.dataclass(frozen=True)
class TempoWarp:
  """Training-time tempo augmentation: ``config.augment``, field for field; ``tempo_range=1`` is
  off. A value out of range raises ``ArgError`` naming the field.

  tempo_range: r >= 1; a warped video advances ``speed`` frames per step, with log(speed)
    uniform in [-log r, log r] at each knot.
  tempo_knots: 1 = one speed per video; K > 1 = K speeds at evenly spaced steps, log-speed
    interpolated linearly between them (the video speeds up and slows down along its length).
  """

  tempo_range: float = 1.0
  tempo_knots: int = 1

  def __post_init__(self):
    if not self.tempo_range >= 1:
      raise ArgError(
        'tempo_range', f'TempoWarp: tempo_range must be >= 1 (1: off), got {self.tempo_range}.'
      )
    if self.tempo_knots < 1 or self.tempo_knots != int(self.tempo_knots):
      raise ArgError(
        'tempo_knots', f'TempoWarp: tempo_knots must be an integer >= 1, got {self.tempo_knots}.'
      )
    object.__setattr__(self, 'tempo_range', float(self.tempo_range))  # a static jit argument:
    object.__setattr__(self, 'tempo_knots', int(self.tempo_knots))  # one type per field

  @property
  def active(self) -> bool:
    return self.tempo_range > 1.0


def true_lengths(videos: jax.Array) -> jax.Array:
  """Lengths recovered from last-frame padding (`pad_with_last_frame`): int32 `[batch]`.

  A video whose own last frames repeat exactly reads as shorter: the repeats count as padding.

  Args:
    videos: `[batch, time, height, width, channels]`.
  """
  chex.assert_rank(videos, 5)
  differs = jnp.any(videos != videos[:, -1:], axis=(2, 3, 4))  # [batch, time]
  last_differing = jnp.max(jnp.where(differs, jnp.arange(videos.shape[1]), -1), axis=1)
  return (last_differing + 2).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames='warp')
def random_time_warp(key: jax.Array, videos: jax.Array, warp: TempoWarp) -> jax.Array:
  """Resamples each video in time at random speeds (training), keeping its frames and order.

  Step t of the output shows input frame `round(s_t)`, with `s_0 = 0` and `s_t - s_{t-1}` the
  speed at step t (`TempoWarp`). A video that would not reach its last true frame by the last
  step (slowed down past the padded length) is sped up uniformly until it does; after its last
  true frame the output repeats it, as the padding does.

  Args:
    key: PRNG key.
    videos: `[batch, time, height, width, channels]`, each padded with its last frame.
    warp: the speed range and knots (static).
  Returns:
    `[batch, time, height, width, channels]`, same dtype.
  """
  chex.assert_rank(videos, 5)
  b, t = videos.shape[:2]
  if t < 2:
    return videos
  length = true_lengths(videos)
  log_r = jnp.log(jnp.float32(warp.tempo_range))
  log_knots = jax.random.uniform(key, (b, warp.tempo_knots), minval=-log_r, maxval=log_r)
  if warp.tempo_knots == 1:
    log_speed = jnp.broadcast_to(log_knots, (b, t - 1))
  else:
    where = jnp.linspace(0.0, warp.tempo_knots - 1.0, t - 1)
    log_speed = jax.vmap(lambda k: jnp.interp(where, jnp.arange(warp.tempo_knots), k))(log_knots)
  s = jnp.concatenate([jnp.zeros((b, 1)), jnp.cumsum(jnp.exp(log_speed), axis=1)], axis=1)
  s = s * jnp.maximum(1.0, (length - 1) / s[:, -1])[:, None]
  src = jnp.minimum(jnp.round(s).astype(jnp.int32), length[:, None] - 1)  # [batch, time]
  return jnp.take_along_axis(videos, src[:, :, None, None, None], axis=1)


def to_float(videos: jax.Array) -> jax.Array:
  """uint8 `[..., 3]` -> float32 in [0, 1] (the models' input range)."""
  return jnp.asarray(videos, jnp.float32) / 255.0
