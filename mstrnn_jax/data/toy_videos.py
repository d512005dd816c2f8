"""A tiny folder of real video files for tests and demos: squares moving in different directions.

```python
root = make_folder("/tmp/moving")      # /tmp/moving/subject<i>/<left|right>/clip<j>.avi, 36x36
ds = pipeline.load_dataset(f"folder:{root}", data_dir="/tmp/data", frame_size=36, crop_margin=4)
```

`frame_size=36, crop_margin=4` keeps the frames as written (lossless FFV1) and gives the crop of
32 that the synthetic datasets use (a 2-context-layer MSTRNN needs a crop of at least 30).

A `right` clip is a `left` clip played backwards (same frames, reversed order), so a single frame
or a bag of frames cannot tell the classes apart; only the temporal order can.
"""

from __future__ import annotations

import pathlib

import av
import numpy as np

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
