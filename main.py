r"""Entry point: `python main.py --config configs/synthetic.py --workdir DIR`.

Parses the config (with `--config.a.b=value` overrides), writes it to the workdir and runs the job.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/synthetic.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the config, checkpoints and logs.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    raise NotImplementedError("filled in below")


if __name__ == "__main__":
    app.run(main)
