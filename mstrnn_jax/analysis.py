"""Analyses of trained models: PCA trajectories (Figs. 5, 8), end-point separation, early recognition.

Everything here is a pure function of arrays; loading a trained run and choosing videos lives in
`experiments/analyze.py` (via `run_analysis`). The pieces compose:

    acts = out.activations['context2']                  # [videos, time, h, w, c] from models.apply
    traj = flatten_trajectories(acts)                   # [videos, time, features]
    pca = fit_pca(traj.reshape(-1, traj.shape[-1]), 3)  # PCA over all (video, time) points
    proj = pca_transform(pca, traj)                     # [videos, time, 3]
    sep = endpoint_separation(traj, [0], [3])           # end-point distance / trajectory spread
    fig = plot_pca_trajectories({'MSTRNN': proj}, names, voting_steps=15,
                                explained={'MSTRNN': pca.explained_variance_ratio})
    curves = early_recognition(out.logits, labels)      # head -> accuracy [time]

Conventions (Sec. III.B of the paper): a trajectory is one video's activations over its whole
(padded) length; the voting period is its last `voting_steps` time steps.
"""
from __future__ import annotations

import functools
from typing import Mapping, NamedTuple, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

# Fig. 5 / Fig. 8 panels: (x component, y component), 0-based.
PC_PAIRS = ((0, 1), (0, 2), (1, 2))


class PCA(NamedTuple):
  """A fitted principal component analysis.

  mean: [features] -- the data mean that is subtracted before projecting.
  components: [n_components, features] -- orthonormal rows, by decreasing variance. The sign of
    each row is fixed so that its entry of largest magnitude is positive (deterministic output).
  explained_variance: [n_components] -- variance of the data along each component (ddof=1).
  explained_variance_ratio: [n_components] -- explained_variance / total variance.
  """
  mean: jax.Array
  components: jax.Array
  explained_variance: jax.Array
  explained_variance_ratio: jax.Array


@functools.partial(jax.jit, static_argnames=("n_components",))
def _fit_pca(x: jax.Array, n_components: int) -> PCA:
  n, d = x.shape
  mean = jnp.mean(x, axis=0)
  xc = x - mean
  hi = jax.lax.Precision.HIGHEST
  total_var = jnp.sum(xc * xc) / (n - 1)
  if d <= n:
    # Primal form: eigen-decomposition of the [d, d] covariance.
    cov = jnp.matmul(xc.T, xc, precision=hi) / (n - 1)
    evals, evecs = jnp.linalg.eigh(cov)                       # ascending
    evals = evals[::-1][:n_components]
    comps = evecs[:, ::-1][:, :n_components].T                # [k, d]
  else:
    # Dual form: eigen-decomposition of the [n, n] Gram matrix, then map back to feature space.
    gram = jnp.matmul(xc, xc.T, precision=hi) / (n - 1)
    evals, evecs = jnp.linalg.eigh(gram)
    evals = evals[::-1][:n_components]
    u = evecs[:, ::-1][:, :n_components]                      # [n, k]
    scale = jnp.sqrt(jnp.maximum(evals, 0.0) * (n - 1))
    comps = (jnp.matmul(xc.T, u, precision=hi) / jnp.where(scale > 0, scale, 1.0)).T
    comps = comps / jnp.maximum(jnp.linalg.norm(comps, axis=1, keepdims=True), 1e-30)
  evals = jnp.maximum(evals, 0.0)
  pivot = jnp.take_along_axis(comps, jnp.argmax(jnp.abs(comps), axis=1)[:, None], axis=1)
  comps = comps * jnp.where(pivot < 0, -1.0, 1.0)
  return PCA(mean=mean, components=comps, explained_variance=evals,
             explained_variance_ratio=evals / total_var)


def fit_pca(x: jax.Array | np.ndarray, n_components: int = 3) -> PCA:
  """Fits PCA to points `x`: [points, features] (float). Returns the top `n_components` components.

  Implemented with a symmetric eigen-decomposition of the smaller of the covariance ([features,
  features]) and Gram ([points, points]) matrices, so that wide activations (thousands of features,
  a few hundred time steps) stay cheap.

  Raises ValueError if there are fewer than two points, if `n_components` exceeds
  min(points - 1, features), or if the data have fewer than `n_components` directions of non-zero
  variance (e.g. a layer whose units are all dead): such components would be undefined.
  """
  x = jnp.asarray(x)
  chex.assert_rank(x, 2)
  n, d = x.shape
  if n < 2:
    raise ValueError(f"mstrnn_jax/analysis.py: fit_pca: need at least 2 points, got {n}.")
  if not 1 <= n_components <= min(n - 1, d):
    raise ValueError(f"mstrnn_jax/analysis.py: fit_pca: n_components={n_components} must be in "
                     f"[1, min(points - 1, features)] = [1, {min(n - 1, d)}] for x of shape {x.shape}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  if not bool(jnp.all(jnp.isfinite(x))):
    raise ValueError("mstrnn_jax/analysis.py: fit_pca: non-finite values in the input points; "
                     "check the activations.")
  pca = _fit_pca(x, n_components)
  ratio = np.asarray(pca.explained_variance_ratio)
  if not np.all(np.isfinite(ratio)) or ratio[-1] <= 1e-6:
    raise ValueError(
        f"mstrnn_jax/analysis.py: fit_pca: the points span fewer than {n_components} directions of "
        f"non-zero variance (explained variance ratios {ratio.tolist()}); the activations are (nearly) "
        "constant -- check that the layer is alive (e.g. not all-zero ReLU units) and that the videos "
        "differ.")
  return pca


@jax.jit
def pca_transform(pca: PCA, x: jax.Array) -> jax.Array:
  """Projects `x`: [..., features] onto the fitted components -> [..., n_components]."""
  chex.assert_equal(x.shape[-1], pca.mean.shape[0])
  return jnp.matmul(x - pca.mean, pca.components.T, precision=jax.lax.Precision.HIGHEST)


def flatten_trajectories(activations: jax.Array | np.ndarray) -> jax.Array:
  """Flattens per-step activations [videos, time, ...] (e.g. [videos, time, h, w, c] conv maps)
  to trajectories [videos, time, features]."""
  activations = jnp.asarray(activations)
  if activations.ndim < 3:
    raise ValueError("mstrnn_jax/analysis.py: flatten_trajectories: expected [videos, time, ...features], "
                     f"got shape {activations.shape}.")
  return activations.reshape(activations.shape[0], activations.shape[1], -1)


def trajectory_spread(trajectories: jax.Array) -> jax.Array:
  """Root-mean-square distance of all points of `trajectories` [videos, time, dims] from their
  common mean: the scale against which end-point distances are measured (a scalar)."""
  chex.assert_rank(trajectories, 3)
  pts = trajectories.reshape(-1, trajectories.shape[-1])
  return jnp.sqrt(jnp.mean(jnp.sum((pts - jnp.mean(pts, axis=0)) ** 2, axis=-1)))


def endpoint_separation(trajectories: jax.Array, group_a: Sequence[int],
                        group_b: Sequence[int]) -> float:
  """Distance between the mean end point of the videos in `group_a` and that of `group_b`,
  divided by `trajectory_spread` of all trajectories: scale-free, so it compares across models.

  trajectories: [videos, time, dims] (raw activations or their PCA projections); the end point of
  a video is its last time step. E.g. Fig. 5: group_a = [JP-JP-JP], group_b = [OH-JP-JP]; a value
  near 0 means the end points converged (the first primitive was forgotten). Fig. 8: group_a = all
  Sweep-Laptop videos, group_b = all Close-Laptop videos (distance of the two clusters' centres).
  """
  trajectories = jnp.asarray(trajectories)
  chex.assert_rank(trajectories, 3)
  if len(group_a) == 0 or len(group_b) == 0:
    raise ValueError("mstrnn_jax/analysis.py: endpoint_separation: both groups need at least one video.")
  ends = trajectories[:, -1, :]
  ca = jnp.mean(ends[jnp.asarray(group_a)], axis=0)
  cb = jnp.mean(ends[jnp.asarray(group_b)], axis=0)
  return float(jnp.linalg.norm(ca - cb) / trajectory_spread(trajectories))


def early_recognition(logits: Mapping[str, jax.Array],
                      labels: Mapping[str, jax.Array]) -> dict[str, np.ndarray]:
  """Accuracy as a function of time step: how soon a model knows.

  logits: head -> [videos, time, classes] (e.g. `models.apply(...).logits`);
  labels: head -> int [videos]. Returns head -> float accuracy [time] of the per-step argmax, plus
  'joint' (all heads right at that step) when there is more than one head.
  """
  if set(logits) != set(labels):
    raise ValueError(f"mstrnn_jax/analysis.py: early_recognition: logits heads {sorted(logits)} != "
                     f"label heads {sorted(labels)}.")
  correct = {}
  for head, lg in logits.items():
    lg = jnp.asarray(lg)
    lb = jnp.asarray(labels[head])
    chex.assert_rank([lg, lb], [3, 1])
    chex.assert_equal(lg.shape[0], lb.shape[0])
    correct[head] = jnp.argmax(lg, axis=-1) == lb[:, None]              # [videos, time]
  curves = {head: np.asarray(jnp.mean(c, axis=0)) for head, c in correct.items()}
  if len(correct) > 1:
    joint = functools.reduce(jnp.logical_and, correct.values())
    curves["joint"] = np.asarray(jnp.mean(joint, axis=0))
  return curves


def earliest_stable_step(curve: np.ndarray, level: float) -> int | None:
  """First time step t (0-based) from which `curve[t:]` stays >= `level`; None if the last one is below."""
  curve = np.asarray(curve)
  below = np.nonzero(curve < level)[0]
  if below.size == 0:
    return 0
  return None if below[-1] == curve.shape[0] - 1 else int(below[-1] + 1)


def early_recognition_table(curves: Mapping[str, Mapping[str, np.ndarray]], voting_steps: int,
                            fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
                            knows_level: float = 0.9) -> str:
  """Markdown table of early-recognition curves.

  curves: model -> head -> accuracy [time] (from `early_recognition`). One row per (model, head):
  accuracy (%) at the given fractions of the video length, mean accuracy over the voting period
  (last `voting_steps` steps), and "knows from": the first step (1-based, of T) from which the
  accuracy stays >= `knows_level` x its final value.
  """
  cols = [f"t={f:.0%}" for f in fractions]
  lines = ["| model | head | " + " | ".join(cols)
           + f" | voting period (last {voting_steps}) | knows from step |",
           "|---|---|" + "---|" * (len(cols) + 2)]
  for model, heads in curves.items():
    for head, curve in heads.items():
      curve = np.asarray(curve)
      t_max = curve.shape[0]
      at = [curve[max(0, int(round(f * t_max)) - 1)] for f in fractions]
      stable = earliest_stable_step(curve, knows_level * curve[-1])
      knows = "never" if stable is None else f"{stable + 1} / {t_max}"
      lines.append(f"| {model} | {head} | " + " | ".join(f"{100 * a:.1f}" for a in at)
                   + f" | {100 * curve[-voting_steps:].mean():.1f} | {knows} |")
  return "\n".join(lines) + "\n"


def _colours(names: Sequence[str]) -> dict[str, tuple]:
  import matplotlib
  cmap = matplotlib.colormaps["tab10"]
  unique = list(dict.fromkeys(names))
  return {name: cmap(i % 10) for i, name in enumerate(unique)}


def plot_pca_trajectories(projections: Mapping[str, np.ndarray], names: Sequence[str], voting_steps: int,
                          explained: Mapping[str, np.ndarray] | None = None, title: str | None = None):
  """Fig. 5 / Fig. 8 style figure: one row per model, three panels (PC1-PC2, PC1-PC3, PC2-PC3).

  projections: model -> [videos, time, >=3] PCA projections (`pca_transform`); names: one label
  per video (videos sharing a label share a colour and one legend entry, e.g. a class name);
  voting_steps: the last steps drawn thick (the voting period); explained: model -> explained
  variance ratios, shown on the axis labels. Start points are circles, end points stars.
  Returns a `matplotlib.figure.Figure` (no pyplot state).
  """
  from matplotlib.figure import Figure
  from matplotlib.lines import Line2D

  colours = _colours(names)
  fig = Figure(figsize=(12, 3.6 * len(projections) + 0.6), layout="constrained")
  axes = fig.subplots(len(projections), 3, squeeze=False)
  for row, (model, proj) in enumerate(projections.items()):
    proj = np.asarray(proj)
    if proj.ndim != 3 or proj.shape[-1] < 3 or proj.shape[0] != len(names):
      raise ValueError(f"mstrnn_jax/analysis.py: plot_pca_trajectories: {model}: expected "
                       f"[{len(names)} videos, time, >=3], "
                       f"got {proj.shape}.")
    v0 = max(proj.shape[1] - voting_steps, 0)
    for col, (i, j) in enumerate(PC_PAIRS):
      ax = axes[row, col]
      for k, name in enumerate(names):
        c = colours[name]
        x, y = proj[k, :, i], proj[k, :, j]
        ax.plot(x[:v0 + 1], y[:v0 + 1], color=c, lw=0.9, alpha=0.8)
        ax.plot(x[v0:], y[v0:], color=c, lw=2.6)
        ax.plot(x[0], y[0], "o", color=c, ms=5, mec="k", mew=0.5)
        ax.plot(x[-1], y[-1], "*", color=c, ms=12, mec="k", mew=0.6)
      ev = None if explained is None else np.asarray(explained[model])
      ax.set_xlabel(f"PC{i + 1}" + ("" if ev is None else f" ({100 * ev[i]:.0f}%)"))
      ax.set_ylabel(f"PC{j + 1}" + ("" if ev is None else f" ({100 * ev[j]:.0f}%)"))
      ax.set_title(f"{model}: PC{i + 1}-PC{j + 1}", fontsize=10)
      ax.tick_params(labelsize=8)
  handles = [Line2D([], [], color=c, lw=2, label=n) for n, c in colours.items()]
  handles += [Line2D([], [], ls="", marker="o", color="grey", label="start"),
              Line2D([], [], ls="", marker="*", ms=10, color="grey", label="end"),
              Line2D([], [], color="grey", lw=2.6, label=f"voting period (last {voting_steps})")]
  fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=9)
  if title:
    fig.suptitle(title)
  return fig


def plot_early_recognition(curves: Mapping[str, Mapping[str, np.ndarray]], voting_steps: int,
                           chance: Mapping[str, float] | None = None, title: str | None = None):
  """Accuracy vs time step, one panel per head (plus 'joint'), one line per model; the voting period
  is shaded and chance level (head -> accuracy) dashed. curves: model -> head -> [time]."""
  from matplotlib.figure import Figure

  heads = list(dict.fromkeys(h for per_model in curves.values() for h in per_model))
  fig = Figure(figsize=(4.2 * len(heads), 3.4), layout="constrained")
  axes = fig.subplots(1, len(heads), squeeze=False)[0]
  for ax, head in zip(axes, heads):
    t_max = 0
    for model, per_model in curves.items():
      if head in per_model:
        curve = 100 * np.asarray(per_model[head])
        t_max = max(t_max, curve.shape[0])
        ax.plot(np.arange(1, curve.shape[0] + 1), curve, lw=1.8, label=model)
    ax.axvspan(t_max - voting_steps + 0.5, t_max + 0.5, color="0.85", zorder=0, label="voting period")
    if chance is not None and head in chance:
      ax.axhline(100 * chance[head], color="k", ls="--", lw=1, label="chance")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("time step")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(head)
  axes[0].legend(fontsize=8, loc="upper left")
  if title:
    fig.suptitle(title)
  return fig
