"""Time-constant sensitivity (Table VI): every (tau1, tau2) pair x every fold in one program.

    python experiments/sweep.py --dataset=synthcl2 --tau1=2,50,100 --tau2=50,100,150
    python experiments/sweep.py --dataset=cl2ad --tau1=2,50,100 --tau2=50,100,150  # paper

Takes every flag of experiments/run.py (mstrnn_jax/cli.py).  Writes the Table VI layout to
results.md, a heat-map PNG per category (heatmap_<model>_<cat>.png) and everything
experiments/run.py writes.
"""

from absl import app

from mstrnn_jax import cli

cli.define_flags(
  dataset='synthcl2', models=('mstrnn', 'mstnn'), tau1=['2', '50', '100'], tau2=['50', '100', '150']
)

if __name__ == '__main__':
  app.run(cli.main)
