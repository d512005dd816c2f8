"""Figures of a LOSO run: accuracy curves per model and Table VI heat-maps per head."""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position

from mstrnn_jax import evaluate  # noqa: E402  pylint: disable=wrong-import-position


def accuracy_curves(entry: dict, heads, title: str) -> plt.Figure:
  """Test accuracy per run (thin) and the mean over runs (thick) against the epoch, one panel
  per category, and the mean training loss.

  Args:
    entry: a model entry of results.json ('runs', 'history' with 'test_acc' [R][E][H+1]).
  """
  test_acc = np.asarray(entry['history']['test_acc'])            # [R, E, H+1]
  loss = np.asarray(entry['history']['train_loss'])               # [R, E]
  cats = [h for h, _ in heads] + ([evaluate.JOINT] if len(heads) > 1 else [])
  epochs = np.arange(1, test_acc.shape[1] + 1)
  fig, axes = plt.subplots(1, len(cats) + 1, figsize=(4 * (len(cats) + 1), 3.2), squeeze=False)
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
  fig.tight_layout()
  return fig


def tau_heatmap(summary: dict, tau1s: Sequence[float], tau2s: Sequence[float], category: str,
                title: str) -> plt.Figure:
  """Mean accuracy (annotated mean±SE) over the (tau1 rows, tau2 columns) grid.

  Args:
    summary: 'tau1,tau2' -> :func:`evaluate.summarize_group` output.
  """
  key = lambda a, b: f'{a:g},{b:g}'  # noqa: E731
  mean = np.array([[summary[key(a, b)]['mean'][category] for b in tau2s] for a in tau1s])
  se = np.array([[summary[key(a, b)]['se'][category] for b in tau2s] for a in tau1s])
  fig, ax = plt.subplots(figsize=(1.6 * len(tau2s) + 2, 1.2 * len(tau1s) + 1.5))
  im = ax.imshow(mean, cmap='viridis', origin='upper')
  for i in range(len(tau1s)):
    for j in range(len(tau2s)):
      ax.text(j, i, evaluate.fmt(mean[i, j], se[i, j]), ha='center', va='center',
              color='w' if mean[i, j] < mean.max() - 0.5 * np.ptp(mean) else 'k', fontsize=8)
  ax.set_xticks(range(len(tau2s)), [f'{t:g}' for t in tau2s])
  ax.set_yticks(range(len(tau1s)), [f'{t:g}' for t in tau1s])
  ax.set_xlabel('τ2')
  ax.set_ylabel('τ1')
  ax.set_title(title)
  fig.colorbar(im, ax=ax, label='accuracy (%)')
  fig.tight_layout()
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
    paths.append(_save(fig, os.path.join(workdir, f'curves_{model}.png')))
    summary = entry.get('summary', {})
    if tau_pairs is not None and len(summary) > 1:
      tau1s = sorted({p[0] for p in tau_pairs})
      tau2s = sorted({p[1] for p in tau_pairs})
      cats = [h for h, _ in heads] + ([evaluate.JOINT] if len(heads) > 1 else [])
      for cat in cats:
        fig = tau_heatmap(summary, tau1s, tau2s, cat,
                          f'{model.upper()} on {dataset}: {cat} accuracy')
        paths.append(_save(fig, os.path.join(workdir, f'heatmap_{model}_{cat}.png')))
  return paths


def _save(fig: plt.Figure, path: str) -> str:
  tmp = path + '.tmp.png'
  fig.savefig(tmp, dpi=110)
  plt.close(fig)
  os.replace(tmp, path)
  return path
