"""One experiment command's job, after its flags: check the config against the workdir's record of its
run and against everything it reads, record it, then train, train and evaluate, or evaluate.

Every check comes before anything is written, and the record check before JAX and TensorFlow load.
"""

from absl import logging

from ssync_jax import logs, paths, run_record

MODES = ("train_and_eval", "train", "eval")


def run(config, workdir: str, mode: str, *, config_file: str, distributed: bool = False,
        coordinator_address: str | None = None, num_processes: int | None = None,
        process_id: int | None = None) -> None:  # fmt: skip
    """Runs `mode` on `config` in `workdir`.

    Args:
        config: the parsed experiment config (overrides applied).
        workdir: the run's directory, local or gs://.
        mode: "train_and_eval" (train, resuming from the workdir's latest checkpoint, and evaluate
            periodically), "train", or "eval" (evaluate the latest checkpoint).
        config_file: the config's file, for the log.
        distributed, coordinator_address, num_processes, process_id: how this process joins a
            multi-process job (`sharding.initialize_distributed`).

    Raises:
        UserError: a config that would change the workdir's run, missing data, weights or runs.
    """
    paths.expand_config_paths(config)
    workdir = paths.absolute(workdir)  # Local, or a bucket (gs://...) shared by all hosts.
    evaluation = mode == "eval"
    changes = run_record.check(workdir, config, evaluation)  # Before JAX loads, before anything is written.
    logs.import_tensorflow_quietly()
    import jax  # Here: `--help` and the checks above come back without loading JAX and TensorFlow.

    from ssync_jax import sharding, train

    sharding.initialize_distributed(coordinator_address, num_processes, process_id, distributed)
    fresh = not evaluation and not run_record.has_checkpoint(workdir)
    train.check_sources(config, training=not evaluation, fresh=fresh, evaluating=mode != "train")
    resolved = run_record.write(workdir, config, changes, evaluation) if jax.process_index() == 0 else None
    if jax.process_index() == 0:
        logging.info("Config %s; resolved in %s", config_file, resolved)
        if changes:
            logging.info("This resume changes %s (recorded in %s).", ", ".join(changes), run_record.CHANGES_FILE)
    if evaluation:
        train.evaluate_checkpoint(config, workdir)
    else:
        train.train_and_evaluate(config, workdir, run_evaluation=mode == "train_and_eval")
