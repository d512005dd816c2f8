"""Smaller frames for small experiments on the real datasets (``data.<dataset>.frame_size``)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax.data.dataset import Dataset


def resize_frames(ds: Dataset, frame_size: int, chunk: int = 64) -> Dataset:
  """``ds`` with square ``frame_size`` frames (antialiased bilinear), crop scaled in proportion.

  videos uint8 [N, T, H, W, 3] -> [N, T, frame_size, frame_size, 3]; crop_size ->
  round(crop_size * frame_size / H).
  """
  n, t, h, w, c = ds.videos.shape
  if frame_size == h == w:
    return ds
  if frame_size < 1 or frame_size > min(h, w):
    raise ValueError(
      f'{ds.name}: frame_size must be in 1..{min(h, w)} (the stored size), got {frame_size}.'
    )
  shape = (t, frame_size, frame_size, c)
  resize = jax.jit(jax.vmap(lambda v: jax.image.resize(v.astype(jnp.float32), shape, 'linear')))
  out = np.concatenate(
    [
      np.asarray(jnp.clip(jnp.round(resize(ds.videos[i : i + chunk])), 0, 255), np.uint8)
      for i in range(0, n, chunk)
    ]
  )
  return dataclasses.replace(ds, videos=out, crop_size=int(round(ds.crop_size * frame_size / h)))
