"""Vectorised NumPy rasteriser for the synthetic datasets.

Scenes are lists of anti-aliased shapes (capsules and rotated boxes) whose parameters are
arrays over `[videos, time]`. Each shape is drawn by evaluating its signed distance on the
pixels of a small window around it (per video and frame) and alpha-compositing the covered
pixels over the image in list order (painter's algorithm).

Coordinates are pixels, `(y, x)` with y pointing down, pixel centres at integer + 0.5.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Union

import numpy as np


class Capsule(NamedTuple):
  """A line segment with a radius (a disc when `a == b`).

  a, b:    float `[videos, time, 2]` end points `(y, x)` in pixels.
  radius:  float broadcastable to `[videos, time]`, pixels.
  colour:  float `[videos, 3]` or `[videos, time, 3]` in [0, 1].
  opacity: float broadcastable to `[videos, time]` in [0, 1] (0 hides the shape).
  """

  a: np.ndarray
  b: np.ndarray
  radius: np.ndarray
  colour: np.ndarray
  opacity: Union[np.ndarray, float] = 1.0


class Box(NamedTuple):
  """A rotated rectangle.

  centre:  float `[videos, time, 2]` `(y, x)` in pixels.
  half:    float broadcastable to `[videos, time, 2]`: half height, half width in pixels.
  angle:   float broadcastable to `[videos, time]`, radians, counter-clockwise on screen.
  colour:  float `[videos, 3]` or `[videos, time, 3]` in [0, 1].
  opacity: float broadcastable to `[videos, time]` in [0, 1].
  """

  centre: np.ndarray
  half: np.ndarray
  angle: Union[np.ndarray, float]
  colour: np.ndarray
  opacity: Union[np.ndarray, float] = 1.0


Shape = Union[Capsule, Box]


def _bt(x, n: int, t: int, rows: np.ndarray, trailing: tuple = ()) -> np.ndarray:
  """Broadcasts `x` to `[n, t, *trailing]` and takes the videos `rows`."""
  x = np.asarray(x, dtype=np.float32)
  if x.ndim == len(trailing) + 1:  # per-video constant: [videos, *trailing]
    x = x[:, None]
  return np.broadcast_to(x, (n, t) + trailing)[rows]


def _capsule_coverage(yy, xx, a, b, r):
  """Anti-aliased coverage `[v, t, Y, X]` of capsules a-b with radius r on pixel centres yy, xx."""
  ay, ax = a[..., 0, None, None], a[..., 1, None, None]
  dy, dx = b[..., 0, None, None] - ay, b[..., 1, None, None] - ax
  py, px = yy - ay, xx - ax
  denom = np.maximum(dy * dy + dx * dx, 1e-9)
  h = np.clip((py * dy + px * dx) / denom, 0.0, 1.0)
  dist = np.hypot(py - h * dy, px - h * dx) - r[..., None, None]
  return np.clip(0.5 - dist, 0.0, 1.0)


def _box_coverage(yy, xx, c, half, angle):
  """Anti-aliased coverage `[v, t, Y, X]` of rotated boxes on pixel centres yy, xx."""
  cos, sin = np.cos(angle)[..., None, None], np.sin(angle)[..., None, None]
  py, px = yy - c[..., 0, None, None], xx - c[..., 1, None, None]
  # Screen y points down, so a counter-clockwise rotation on screen uses -angle in (x, y).
  u = px * cos - py * sin
  v = px * sin + py * cos
  qy = np.abs(v) - half[..., 0, None, None]
  qx = np.abs(u) - half[..., 1, None, None]
  outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
  inside = np.minimum(np.maximum(qx, qy), 0.0)
  return np.clip(0.5 - (outside + inside), 0.0, 1.0)


def render(
  background: np.ndarray,
  shapes: Sequence[Shape],
  num_frames: int,
  noise_std: float,
  rng: np.random.Generator,
  chunk: int = 32,
) -> np.ndarray:
  """Draws `shapes` over `background` and quantises to uint8.

  Args:
    background: float `[videos, H, W, 3]` (static) or `[videos, time, H, W, 3]`, in [0, 1].
    shapes: drawn in order, later shapes on top.
    num_frames: time steps to render.
    noise_std: standard deviation of i.i.d. Gaussian pixel noise (in [0, 1] units).
    rng: source of the pixel noise.
    chunk: videos rendered at once (bounds memory).
  Returns:
    uint8 `[videos, time, H, W, 3]`.
  """
  n = background.shape[0]
  h, w = background.shape[-3:-1]
  out = np.empty((n, num_frames, h, w, 3), np.uint8)
  for start in range(0, n, chunk):
    sl = np.arange(start, min(start + chunk, n))
    bg = background[sl]
    if bg.ndim == 4:
      bg = bg[:, None]
    img = np.array(np.broadcast_to(bg, (len(sl), num_frames, h, w, 3)), np.float32)
    for shape in shapes:
      opacity = _bt(shape.opacity, n, num_frames, sl)
      active = np.nonzero((opacity > 0).any(1))[0]  # skip videos where the shape is hidden
      if not len(active):
        continue
      rows = sl[active]
      if isinstance(shape, Capsule):
        a, b = _bt(shape.a, n, num_frames, rows, (2,)), _bt(shape.b, n, num_frames, rows, (2,))
        r = _bt(shape.radius, n, num_frames, rows)
        centre = 0.5 * (a + b)
        reach = 0.5 * np.abs(b - a) + r[..., None]
      else:
        centre = _bt(shape.centre, n, num_frames, rows, (2,))
        half = _bt(shape.half, n, num_frames, rows, (2,))
        angle = _bt(shape.angle, n, num_frames, rows)
        reach = np.linalg.norm(half, axis=-1, keepdims=True)
      # Evaluate the shape only in a k x k window around it (the same k for the whole chunk).
      k = int(np.ceil(2 * reach.max())) + 3
      origin = np.floor(centre - k / 2).astype(np.int64)  # [v, t, 2]
      ys = origin[..., 0, None] + np.arange(k)  # [v, t, k]
      xs = origin[..., 1, None] + np.arange(k)
      yy = (ys + 0.5).astype(np.float32)[..., :, None]  # [v, t, k, 1]
      xx = (xs + 0.5).astype(np.float32)[..., None, :]  # [v, t, 1, k]
      if isinstance(shape, Capsule):
        cov = _capsule_coverage(yy, xx, a, b, r)
      else:
        cov = _box_coverage(yy, xx, centre, half, angle)
      inside = ((ys >= 0) & (ys < h))[..., :, None] & ((xs >= 0) & (xs < w))[..., None, :]
      alpha = cov * inside * opacity[active][..., None, None]
      vi, ti, ky, kx = np.nonzero(alpha)  # composite only the covered pixels
      a_ = alpha[vi, ti, ky, kx][:, None]
      colour = _bt(shape.colour, n, num_frames, rows, (3,))[vi, ti]
      yi, xi = ys[vi, ti, ky], xs[vi, ti, kx]
      vi = active[vi]
      img[vi, ti, yi, xi] += a_ * (colour - img[vi, ti, yi, xi])
    img += noise_std * rng.standard_normal(img.shape, dtype=np.float32)
    out[sl] = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
  return out
