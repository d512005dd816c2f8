"""Every figure of the package, as ``matplotlib.figure.Figure`` objects (no pyplot state).

* A LOSO run: accuracy curves per model and Table VI heat-maps per head (``write_figures``).
* Several runs side by side (:mod:`mstrnn_jax.compare`): their mean curves (``compare_curves``).
* The analysis of a trained run (:mod:`mstrnn_jax.analysis`): PCA trajectories (Figs. 5, 8)
  and early-recognition curves.
"""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
import numpy as np

from mstrnn_jax import evaluate
from mstrnn_jax.workdir import write_atomic

PC_PAIRS = ((0, 1), (0, 2), (1, 2))


def accuracy_curves(entry: dict, heads, title: str) -> Figure:
  """Test accuracy per run (thin) and the mean over runs (thick) against the epoch, one panel
  per category, and the mean training loss.

  Args:
    entry: a model entry of results.json ('runs', 'history' with 'test_acc' [R][E][H+1]).
  """
  test_acc = np.asarray(entry['history']['test_acc'])  # [R, E, H+1]
  loss = np.asarray(entry['history']['train_loss'])  # [R, E]
  cats = [h for h, _ in heads] + ([evaluate.JOINT] if len(heads) > 1 else [])
  epochs = np.arange(1, test_acc.shape[1] + 1)
  fig = Figure(figsize=(4 * (len(cats) + 1), 3.2), layout='constrained')
  axes = fig.subplots(1, len(cats) + 1, squeeze=False)
  for c, cat in enumerate(cats):
    ax = axes[0, c]
    col = c if cat != evaluate.JOINT else test_acc.shape[-1] - 1
    for r in range(test_acc.shape[0]):
      ax.plot(epochs, test_acc[r, :, col], lw=0.6, alpha=0.4)
    ax.plot(epochs, test_acc[:, :, col].mean(axis=0), lw=2.2, color='k', label='mean')
    ax.set_xlabel('epoch')
    ax.set_ylabel(f'test accuracy: {cat} (%)')
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
  ax = axes[0, -1]
  ax.plot(epochs, loss.mean(axis=0), color='C3')
  ax.set_xlabel('epoch')
  ax.set_ylabel('training loss (mean over runs)')
  ax.grid(alpha=0.3)
  fig.suptitle(title)
  return fig


def compare_curves(
  rows: Sequence[dict], label, title: str, accuracy: str = 'joint accuracy'
) -> Figure:
  """Held-out (solid) and training (dashed) accuracy against the epoch, mean over folds, one
  colour per row of :func:`mstrnn_jax.compare.rows`; ``label(row)`` names it, ``accuracy``
  the category the rows read (:func:`mstrnn_jax.compare.accuracy_name`)."""
  fig = Figure(figsize=(7.5, 4.2), layout='constrained')
  ax = fig.subplots()
  for i, row in enumerate(rows):
    colour = matplotlib.colormaps['tab10'](i % 10)
    for key, style, suffix in (('curve:test', '-', 'held-out'), ('curve:train', '--', 'training')):
      curve = row[key]
      ax.plot(
        np.arange(1, len(curve) + 1),
        curve,
        style,
        color=colour,
        lw=1.8 if style == '-' else 1.0,
        label=f'{label(row)}: {suffix}',
      )
  ax.set_xlabel('epoch')
  ax.set_ylabel(f'{accuracy}, mean over folds (%)')
  ax.set_ylim(0, 100)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc='lower right')
  ax.set_title(title, fontsize=9)
  return fig


def bn_splice(result: dict) -> Figure:
  """Held-out joint accuracy (mean ± SE over folds) with subject statistics at the BN sites up
  to each one (:func:`mstrnn_jax.bn_probe.probe_workdir`'s result)."""
  acc = np.array([r['accuracy'] for r in result['runs']])
  mean, se = np.array([evaluate.mean_se(column) for column in acc.T]).T
  x = np.arange(acc.shape[1])
  fig = Figure(figsize=(7.5, 4.2), layout='constrained')
  ax = fig.subplots()
  ax.fill_between(x, mean - se, mean + se, alpha=0.25)
  ax.plot(x, mean, 'o-')
  ax.set_xticks(x, ['none'] + list(result['sites']), rotation=30, fontsize=8)
  ax.set_xlabel('subject statistics at the sites up to (population statistics after)')
  ax.set_ylabel('held-out joint accuracy, mean over folds (%)')
  ax.set_ylim(0, 100)
  ax.grid(alpha=0.3)
  ax.set_title(
    f'{result["model"].upper()}, {result["workdir"]}, epoch {result["epoch"]}', fontsize=9
  )
  return fig


def tau_heatmap(
  summary: dict, tau1s: Sequence[float], tau2s: Sequence[float], category: str, title: str
) -> Figure:
  """Mean accuracy (annotated mean±SE) over the (tau1 rows, tau2 columns) grid.

  The pairs run need not fill the grid (``config.taus`` is any list of pairs): a cell whose
  pair was not run is left blank and marked 'not run'.

  Args:
    summary: :func:`evaluate.tau_key` of (tau1, tau2) -> :func:`evaluate.summarize_group` output.
  """

  def cell(a, b, stat):
    s = summary.get(evaluate.tau_key((a, b)))
    return s[stat][category] if s else np.nan

  mean = np.array([[cell(a, b, 'mean') for b in tau2s] for a in tau1s], dtype=float)
  se = np.array([[cell(a, b, 'se') for b in tau2s] for a in tau1s], dtype=float)
  fig = Figure(figsize=(1.6 * len(tau2s) + 2, 1.2 * len(tau1s) + 1.5), layout='constrained')
  ax = fig.subplots()
  im = ax.imshow(np.ma.masked_invalid(mean), cmap='viridis', origin='upper')
  dark_below = np.nanmax(mean) - 0.5 * (np.nanmax(mean) - np.nanmin(mean))
  for i in range(len(tau1s)):
    for j in range(len(tau2s)):
      run = not np.isnan(mean[i, j])
      ax.text(
        j,
        i,
        evaluate.fmt(mean[i, j], se[i, j]) if run else 'not run',
        ha='center',
        va='center',
        color='w' if run and mean[i, j] < dark_below else 'k',
        fontsize=8,
      )
  ax.set_xticks(range(len(tau2s)), [f'{t:g}' for t in tau2s])
  ax.set_yticks(range(len(tau1s)), [f'{t:g}' for t in tau1s])
  ax.set_xlabel('τ2')
  ax.set_ylabel('τ1')
  ax.set_title(title)
  fig.colorbar(im, ax=ax, label='accuracy (%)')
  return fig


def write_figures(workdir: str, results: dict, heads, tau_pairs) -> list[str]:
  """Writes curves_<model>.png for every trained model and, for sweeps (more than one tau
  pair), heatmap_<model>_<category>.png per category.  Returns the paths written."""
  paths = []
  dataset = results['experiment']['dataset']
  for model, entry in results['models'].items():
    if not entry['epochs_done']:
      continue
    fig = accuracy_curves(entry, heads, f'{model.upper()} on {dataset}: LOSO test accuracy')
    paths.append(save(fig, os.path.join(workdir, f'curves_{model}.png')))
    summary = entry.get('summary', {})
    if tau_pairs is not None and len(summary) > 1:
      tau1s = sorted({p[0] for p in tau_pairs})
      tau2s = sorted({p[1] for p in tau_pairs})
      cats = [h for h, _ in heads] + ([evaluate.JOINT] if len(heads) > 1 else [])
      for cat in cats:
        fig = tau_heatmap(
          summary, tau1s, tau2s, cat, f'{model.upper()} on {dataset}: {cat} accuracy'
        )
        paths.append(save(fig, os.path.join(workdir, f'heatmap_{model}_{cat}.png')))
  return paths


def save(fig: Figure, path: str, dpi: int = 110) -> str:
  """Writes ``fig`` as a PNG atomically; returns ``path``."""
  buf = io.BytesIO()
  fig.savefig(buf, format='png', dpi=dpi)
  write_atomic(path, buf.getvalue())
  return path


# --------------------------------------------------------------------------------------------
# Analysis figures (mstrnn_jax.analysis)
# --------------------------------------------------------------------------------------------
def _colours(names: Sequence[str]) -> dict[str, tuple]:
  cmap = matplotlib.colormaps['tab10']
  unique = list(dict.fromkeys(names))
  return {name: cmap(i % 10) for i, name in enumerate(unique)}


def plot_pca_trajectories(
  projections: Mapping[str, np.ndarray],
  names: Sequence[str],
  voting_steps: int,
  explained: Mapping[str, np.ndarray] | None = None,
  title: str | None = None,
):
  """Fig. 5 / Fig. 8 style figure: one row per model, three panels (PC1-PC2, PC1-PC3, PC2-PC3).

  projections: model -> [videos, time, >=3] PCA projections (`pca_transform`); names: one label
  per video (videos sharing a label share a colour and one legend entry, e.g. a class name);
  voting_steps: the last steps drawn thick (the voting period); explained: model -> explained
  variance ratios, shown on the axis labels. Start points are circles, end points stars.
  Returns a `matplotlib.figure.Figure` (no pyplot state).
  """
  colours = _colours(names)
  fig = Figure(figsize=(12, 3.6 * len(projections) + 0.6), layout='constrained')
  axes = fig.subplots(len(projections), 3, squeeze=False)
  for row, (model, proj) in enumerate(projections.items()):
    proj = np.asarray(proj)
    if proj.ndim != 3 or proj.shape[-1] < 3 or proj.shape[0] != len(names):
      raise ValueError(
        f'mstrnn_jax/plots.py: plot_pca_trajectories: {model}: expected '
        f'[{len(names)} videos, time, >=3], '
        f'got {proj.shape}.'
      )
    v0 = max(proj.shape[1] - voting_steps, 0)
    for col, (i, j) in enumerate(PC_PAIRS):
      ax = axes[row, col]
      for k, name in enumerate(names):
        c = colours[name]
        x, y = proj[k, :, i], proj[k, :, j]
        ax.plot(x[: v0 + 1], y[: v0 + 1], color=c, lw=0.9, alpha=0.8)
        ax.plot(x[v0:], y[v0:], color=c, lw=2.6)
        ax.plot(x[0], y[0], 'o', color=c, ms=5, mec='k', mew=0.5)
        ax.plot(x[-1], y[-1], '*', color=c, ms=12, mec='k', mew=0.6)
      ev = None if explained is None else np.asarray(explained[model])
      ax.set_xlabel(f'PC{i + 1}' + ('' if ev is None else f' ({100 * ev[i]:.0f}%)'))
      ax.set_ylabel(f'PC{j + 1}' + ('' if ev is None else f' ({100 * ev[j]:.0f}%)'))
      ax.set_title(f'{model}: PC{i + 1}-PC{j + 1}', fontsize=10)
      ax.tick_params(labelsize=8)
      ax.locator_params(nbins=4)
  handles = [Line2D([], [], color=c, lw=2, label=n) for n, c in colours.items()]
  handles += [
    Line2D([], [], ls='', marker='o', color='grey', label='start'),
    Line2D([], [], ls='', marker='*', ms=10, color='grey', label='end'),
    Line2D([], [], color='grey', lw=2.6, label=f'voting period (last {voting_steps})'),
  ]
  fig.legend(handles=handles, loc='outside lower center', ncol=min(len(handles), 8), fontsize=9)
  if title:
    fig.suptitle(title)
  return fig


def plot_early_recognition(
  curves: Mapping[str, Mapping[str, np.ndarray]],
  voting_steps: int,
  chance: Mapping[str, float] | None = None,
  title: str | None = None,
):
  """Accuracy vs time step, one panel per head (plus 'joint'), one line per model; the voting period
  is shaded and chance level (head -> accuracy) dashed. curves: model -> head -> [time]."""
  heads = list(dict.fromkeys(h for per_model in curves.values() for h in per_model))
  fig = Figure(figsize=(max(4.2 * len(heads), 6.0), 3.4), layout='constrained')
  axes = fig.subplots(1, len(heads), squeeze=False)[0]
  for ax, head in zip(axes, heads):
    t_max = 0
    for model, per_model in curves.items():
      if head in per_model:
        curve = 100 * np.asarray(per_model[head])
        t_max = max(t_max, curve.shape[0])
        ax.plot(np.arange(1, curve.shape[0] + 1), curve, lw=1.8, label=model)
    ax.axvspan(
      t_max - voting_steps + 0.5, t_max + 0.5, color='0.85', zorder=0, label='voting period'
    )
    if chance is not None and head in chance:
      ax.axhline(100 * chance[head], color='k', ls='--', lw=1, label='chance')
    ax.set_ylim(-2, 102)
    ax.set_xlabel('time step')
    ax.set_ylabel('accuracy (%)')
    ax.set_title(head)
  axes[0].legend(fontsize=8, loc='upper left')
  if title:
    fig.suptitle(title)
  return fig


# --------------------------------------------------------------------------------------------
# Predictions on new clips (mstrnn_jax.predict)
# --------------------------------------------------------------------------------------------
def plot_prediction(
  frames: np.ndarray,
  probs: Mapping[str, np.ndarray],
  class_names: Mapping[str, Sequence[str]],
  voting_steps: int,
  title: str | None = None,
  strip: int = 8,
):
  """A strip of ``strip`` evenly spaced frames over one panel per head: every class's
  probability against the frame, the voting period shaded.

  frames: uint8 [T, H, W, 3]; probs: head -> [T, classes]. Returns a Figure (no pyplot state).
  """
  fig, _ = _prediction_figure(frames, probs, class_names, voting_steps, title, strip)
  return fig


def _prediction_figure(frames, probs, class_names, voting_steps, title, strip):
  """The figure of :func:`plot_prediction` and its probability axes (one per head)."""
  t = len(frames)
  shown = np.unique(np.linspace(0, t - 1, min(strip, t)).round().astype(int))
  heads = list(probs)
  fig = Figure(figsize=(max(7.0, 1.1 * len(shown)), 1.6 + 2.4 * len(heads)), layout='constrained')
  grid = fig.add_gridspec(1 + len(heads), len(shown), height_ratios=[1.0] + [1.6] * len(heads))
  for i, k in enumerate(shown):
    ax = fig.add_subplot(grid[0, i])
    ax.imshow(frames[k])
    ax.set_title(f'frame {k}', fontsize=8)
    ax.set_axis_off()
  axes = []
  steps = np.arange(t)
  for row, head in enumerate(heads):
    ax = fig.add_subplot(grid[1 + row, :])
    colours = _colours(list(class_names[head]))
    for c, name in enumerate(class_names[head]):
      ax.plot(steps, np.asarray(probs[head])[:, c], lw=1.8, color=colours[name], label=name)
    ax.axvspan(t - voting_steps - 0.5, t - 0.5, color='0.85', zorder=0, label='voting period')
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(-0.5, t - 0.5)
    ax.set_xlabel('frame')
    ax.set_ylabel(f'P({head})')
    ax.legend(fontsize=8, loc='upper left', ncol=min(len(class_names[head]) + 1, 6))
    axes.append(ax)
  if title:
    fig.suptitle(title)
  return fig, axes


def save_prediction_gif(
  frames: np.ndarray,
  probs: Mapping[str, np.ndarray],
  class_names: Mapping[str, Sequence[str]],
  voting_steps: int,
  path: str,
  title: str | None = None,
  fps: int = 5,
) -> str:
  """:func:`plot_prediction` animated: the current frame large on the left, a cursor moving
  over the probabilities (matplotlib's PillowWriter); returns ``path``."""
  from matplotlib.animation import PillowWriter  # pylint: disable=import-outside-toplevel

  fig, axes = _prediction_figure(frames, probs, class_names, voting_steps, title, strip=1)
  image = fig.axes[0].images[0]
  cursors = [ax.axvline(0, color='k', lw=1.2) for ax in axes]
  writer = PillowWriter(fps=fps)
  tmp = f'{path}.tmp{os.getpid()}.gif'
  with writer.saving(fig, tmp, dpi=80):
    for t in range(len(frames)):
      image.set_data(frames[t])
      fig.axes[0].set_title(f'frame {t}', fontsize=8)
      for cursor in cursors:
        cursor.set_xdata([t, t])
      writer.grab_frame()
  os.replace(tmp, path)
  return path
