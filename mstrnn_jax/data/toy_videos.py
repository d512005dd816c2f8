"""A tiny folder of real video files for tests and demos: squares moving in different directions.

```python
root = make_folder("/tmp/moving")      # /tmp/moving/subject<i>/<left|right>/clip<j>.avi, 36x36
ds = pipeline.load_dataset(f"folder:{root}", data_dir="/tmp/data", frame_size=36, crop_margin=4)
```

`frame_size=36, crop_margin=4` keeps the frames as written (lossless FFV1) and gives the crop of
32 that the synthetic datasets use (a 2-context-layer MSTRNN needs a crop of at least 30).

A `right` clip is a `left` clip played backwards (same frames, reversed order), so a single frame
or a bag of frames cannot tell the classes apart; only the temporal order can.

`count_events(kind)` is a diagnostic of another kind (docs/fidelity.md section 0x): a square that
brightens (`'blink'`) or moves up and back (`'bob'`) 2 or 3 times within the same window of
equal-length clips, with the same summed signal for both counts. Write it with `benchmarks/count_probe.py` and train
on the folder like on any videos.
"""

from __future__ import annotations

import pathlib

import av
import numpy as np

from mstrnn_jax.data.dataset import Dataset

DIRECTIONS = {'left': (0, -1), 'right': (0, 1), 'up': (-1, 0), 'down': (1, 0)}


def write_clip(path, frames: np.ndarray, fps: int = 10) -> pathlib.Path:
  """Writes uint8 `[T, H, W, 3]` losslessly (FFV1 in AVI); H and W must be even."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('ffv1', rate=fps)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv444p'
    for f in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format='rgb24')))
    container.mux(stream.encode())
  return path


def write_frames(folder, frames: np.ndarray) -> pathlib.Path:
  """Writes uint8 `[T, H, W, 3]` as `folder/frame<t>.png` (a clip given as a folder of frames)."""
  from PIL import Image  # Pillow: a dependency of matplotlib

  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  for t, f in enumerate(frames):  # frame2 sorts before frame10 (natural name order)
    Image.fromarray(f).save(folder / f'frame{t}.png')
  return folder


def moving_square(direction: str, length: int, size: int, rng: np.random.Generator) -> np.ndarray:
  """uint8 `[length, size, size, 3]`: a bright square crossing a dark noisy background.

  The square's colour, side and the start offset across the motion axis are drawn from `rng`;
  the square travels from one side to the other in `direction`.
  """
  dy, dx = DIRECTIONS[direction]
  side = int(rng.integers(size // 5, size // 3 + 1))
  colour = rng.integers(150, 256, 3)
  across = int(rng.integers(0, size - side + 1))
  along = np.linspace(0, size - side, length).round().astype(int)
  if dy + dx < 0:
    along = along[::-1]
  background = rng.integers(0, 40, (size, size, 3))
  frames = np.repeat(background[None], length, 0).astype(np.uint8)
  for t, a in enumerate(along):
    y, x = (a, across) if dy else (across, a)
    frames[t, y : y + side, x : x + side] = colour
  return frames


def make_folder(
  root,
  subjects: int = 3,
  classes=('left', 'right'),
  clips_per_class: int = 2,
  length: int = 8,
  size: int = 36,
  fps: int = 10,
  seed: int = 0,
) -> pathlib.Path:
  """Writes `root/subject<i>/<class>/clip<j>.avi` (`classes` from DIRECTIONS); returns `root`.

  Opposite directions reuse the same frames in reverse order (same `rng` draws), so they differ
  only in time.
  """
  root = pathlib.Path(root)
  for s in range(subjects):
    for j in range(clips_per_class):
      for c in classes:
        # One seed per (subject, clip), shared by every class: left/right, up/down are reverses.
        rng = np.random.default_rng([seed, s, j])
        write_clip(root / f"subject{s}" / c / f"clip{j}.avi", moving_square(c, length, size, rng),
                   fps)  # fmt: skip
  return root


COUNT_KINDS = ('blink', 'bob')


def count_events(
  kind: str,
  side: int = 6,
  amplitude: float = 8.0,
  window: int = 12,
  length: int = 22,
  subjects: int = 10,
  clips_per_subject: int = 28,
  size: int = 36,
  seed: int = 0,
  subframe: bool = False,
) -> Dataset:
  """Clips in which one event happens 2 or 3 times within the same `window` frames.

  Each subject has its own background and square colour; each clip its own square position and
  window start. The square of `side` pixels follows `lift = (1 - cos(2 pi count phase)) / 2` over
  the window (phase 0..1), 0 outside it: `'blink'` adds `amplitude` (a fraction of full scale) to
  its colour, `'bob'` moves it up by `amplitude` pixels. Clips alternate 2 and 3 events and all
  last `length` frames, and the summed lift is the same for both counts, so neither the length
  nor the summed signal tells the count. With `subframe=False` the window starts on a frame, so
  the lift values that are sampled differ by count (window 12: 0.25, 0.75 only with 2 events,
  0.5 only with 3) and a model may tell the classes apart by those levels instead of counting;
  `subframe=True` starts each window at a random fraction of a frame, so both counts sample
  every level.

  Returns a `Dataset` with one head `count` (`2_times`, `3_times`): uint8 videos
  `[subjects * clips_per_subject, length, size, size, 3]`.
  """
  if kind not in COUNT_KINDS:
    raise ValueError(f'count_events: kind={kind!r}; choose one of {", ".join(COUNT_KINDS)}')
  lift_px = int(amplitude) if kind == 'bob' else 0
  if not 2 + lift_px < size - side - 2 or not 3 < length - window - 2:
    raise ValueError(
      f'count_events: side={side}, amplitude={amplitude} do not fit a {size}-pixel frame, or '
      f'window={window} does not fit length={length} (needs length >= window + 6)'
    )
  rng = np.random.default_rng(seed)
  t = np.arange(length)
  n = subjects * clips_per_subject
  videos = np.empty((n, length, size, size, 3), np.uint8)
  for s in range(subjects):
    background, colour = rng.uniform(0.2, 0.8, 3), rng.uniform(0.2, 0.8, 3)
    if np.abs(colour - background).sum() < 0.6:  # keep the square visible
      colour = np.clip(1 - background, 0, 1)
    for j in range(clips_per_subject):
      count = 2 + j % 2
      y = rng.integers(2 + lift_px, size - side - 2, 1)[0]
      x = rng.integers(2, size - side - 2, 1)[0]
      start = rng.integers(3, length - window - 2) + (rng.uniform() if subframe else 0.0)
      phase = np.clip((t - start) / window, 0, 1)
      inside = (t >= start) & (t <= start + window)
      lift = np.where(inside, 0.5 - 0.5 * np.cos(2 * np.pi * count * phase), 0)
      v = np.clip(background + rng.normal(0, 0.03, (length, size, size, 3)), 0, 1)
      for k in range(length):
        if kind == 'bob':
          top = int(round(y - amplitude * lift[k]))
          v[k, top : top + side, x : x + side] = colour
        else:
          v[k, y : y + side, x : x + side] = np.clip(colour + amplitude * lift[k], 0, 1)
      videos[s * clips_per_subject + j] = (v * 255).astype(np.uint8)
  return Dataset(
    name=f'count_{kind}',
    videos=videos,
    lengths=np.full(n, length, np.int32),
    labels={'count': np.tile(np.arange(clips_per_subject) % 2, subjects).astype(np.int32)},
    heads=(('count', 2),),
    class_names={'count': ['2_times', '3_times']},
    subjects=np.repeat(np.arange(subjects, dtype=np.int32), clips_per_subject),
    subject_names=[f'subject{i}' for i in range(subjects)],
    crop_size=size - 4,
    source=f'toy_videos.count_events({kind!r}, side={side}, amplitude={amplitude}, seed={seed}, '
    f'subframe={subframe})',
  )
