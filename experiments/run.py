"""LOSO training of MSTRNN / MSTNN / LRCN: all folds (and tau pairs) in one compiled program.

    python experiments/run.py                       # main job: MSTRNN, synth3a, 9 folds, quick
    python experiments/run.py --model=all           # the three models side by side (Tables III-V)
    python experiments/run.py --dataset=cl1ad --tau1=2 --tau2=100      # paper protocol on CL1AD
    python experiments/run.py --dataset=cl1ad --preset=quick           # small run on real data
    python experiments/run.py --workdir=runs/x --resume                # continue after a kill
    python experiments/run.py --dry_run --config.width_scale=0.25 --config.optim.weight_decay=0.001

Every field of the experiment config (mstrnn_jax/experiment_configs/base.py) is a flag
``--config.<field>=<value>``; the short flags are aliases of some of them (mstrnn_jax/cli.py).
Writes results.json / results.md / metrics.csv / curves / TensorBoard events / checkpoints to
--workdir (default runs/<dataset>-<model>-<timestamp>) and prints the final table.
"""

from absl import app

from mstrnn_jax import cli, names

cli.define_flags(dataset='synth3a', models=names.MODELS + ('all',))

if __name__ == '__main__':
  app.run(cli.main)
