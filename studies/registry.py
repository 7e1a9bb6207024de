"""The learning studies of docs/RESULTS.md §1, each a list of runs that `studies.learning --study` trains.

A run is `main.py --config CONFIG:VARIANT` with the study's and its own `--config.*` overrides; a
run may start from another run's checkpoint (`branch`, via `config.init_from`), as an SSync run
shares the first 30 % of training with its base twin. Names are the run directories under `--root`.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of a study.

    Attributes:
        name: its directory under the study's root.
        variant: the config's variant ("base" or "ssync").
        overrides: `--config.KEY=VALUE` for this run (win over the study's).
        branch: (another run's name, step): start from that run's checkpoint at that step.
        config: its config file, if not the study's.
    """

    name: str
    variant: str
    overrides: tuple[str, ...] = ()
    branch: tuple[str, int] | None = None
    config: str | None = None


@dataclasses.dataclass(frozen=True)
class Study:
    """Runs of one config, compared in one table.

    Attributes:
        config: the config file.
        description: what the study asks (printed above its table).
        runs: in training order (a branch comes after the run it branches from).
        overrides: `--config.KEY=VALUE` for every run.
        test: evaluate each finished run once on the test split (else validation only).
        report_step: its table's validation values are each run's at this step (None: its last), so a
            run that another study trains further keeps this study's reading.
        name: its key in `STUDIES`.
    """

    config: str
    description: str
    runs: tuple[Run, ...]
    overrides: tuple[str, ...] = ()
    test: bool = True
    report_step: int | None = None
    name: str = ""


def _ablations() -> Study:
    """§1.5: what drives the collapse of `configs/synthetic.py:ssync` on the 8x8 grid (seed 0, 10k steps)."""
    steps = 10_000
    return Study(
        config="configs/synthetic.py",
        description="SSync ablations on the 8x8 default (7 slots, seed 0, 10,000 steps, SSync on at 3,000 "
        "unless said otherwise); validation split",
        # The default as it was when this study ran (2026-12-02): Adam 4e-4, one step per dispatch.
        overrides=(
            f"--config.num_train_steps={steps}",
            "--config.eval_every_steps=1000",
            "--config.optimizer.learning_rate=4e-4",
            "--config.steps_per_dispatch=1",
        ),
        test=False,
        runs=(
            Run("base", "base"),
            Run("ssync", "ssync"),
            Run("boundary_only", "ssync", ("--config.losses.ssync_interior.weight=0.0",)),
            Run("interior_only", "ssync", ("--config.losses.ssync_boundary.weight=0.0",)),
            # No IoU exceeds 1, so no slot is ever merged.
            Run("no_merging", "ssync", ("--config.ssync.merge_iou_threshold=1.0",)),
            Run(
                "switch_on_60",
                "ssync",
                ("--config.losses.ssync_boundary.warmup_fraction=0.6", "--config.losses.ssync_interior.warmup_fraction=0.6"),
            ),
            # The trained base (10,000 steps) continued on a 20,000-step schedule with SSync from step
            # 10,000 (50 %), stopped at 15,000: SSync switched on in a model whose maps carry objects.
            Run(
                "from_trained_base",
                "ssync",
                (
                    "--config.num_train_steps=20000",
                    "--config.stop_after_step=15000",
                    "--config.losses.ssync_boundary.warmup_fraction=0.5",
                    "--config.losses.ssync_interior.warmup_fraction=0.5",
                ),
                branch=("base", steps),
            ),
        ),
    )


# The regimes of §1.6: studies/configs/synthetic16.py with either decoder, 15,000 steps, SSync on at 30 %.
REGIME_STEPS = 15_000
REGIME_SWITCH_ON = round(0.3 * REGIME_STEPS)


def _premise(decoder: str, overrides: tuple[str, ...] = ()) -> Study:
    """§1.6: does SSync's premise hold on the base model at 30 % of training (validation split)?

    A 7-slot and a 1-slot base run, both stopped at the switch-on step, one step per dispatch as
    when they ran (2026-12-02; studies/configs/synthetic16.py now runs 4, which the Table 7 study uses:
    equal up to float32 rounding per step, but trajectories part over thousands of steps).
    """
    return Study(
        config="studies/configs/synthetic16.py",
        description=f"SSync's premise on studies/configs/synthetic16.py:base,{decoder} {' '.join(overrides)} at 30 % of "
        f"training (step {REGIME_SWITCH_ON} of {REGIME_STEPS}); validation split",
        overrides=(
            f"--config.num_train_steps={REGIME_STEPS}",
            f"--config.stop_after_step={REGIME_SWITCH_ON}",
            "--config.steps_per_dispatch=1",
            *overrides,
        ),
        test=False,
        runs=(
            Run("base_slots7_seed0", f"base,{decoder}"),
            Run("base_slots1_seed0", f"base,{decoder}", ("--config.model.num_slots=1",)),
        ),
    )


def _table7(
    decoder: str, overrides: tuple[str, ...] = (), slots: tuple[int, ...] = (7, 15), seeds: tuple[int, ...] = (0, 1, 2)
) -> Study:
    """§1.7: the paper's Table 7 in miniature: base vs SSync at several slot counts, 3 seeds, test split.

    Each SSync run branches from its base twin's checkpoint at 30 %: the pair shares its first 30 %
    of training, as the paper's schedule (SSync off until then) makes them.
    """
    runs = []
    for count in slots:
        for seed in seeds:
            base = f"base_slots{count}_seed{seed}"
            settings = (f"--config.seed={seed}", f"--config.model.num_slots={count}")
            runs.append(Run(base, f"base,{decoder}", settings))
            runs.append(Run(f"ssync_slots{count}_seed{seed}", f"ssync,{decoder}", settings, branch=(base, REGIME_SWITCH_ON)))
    return Study(
        config="studies/configs/synthetic16.py",
        description=f"Table 7 in miniature: studies/configs/synthetic16.py:{{base,ssync}},{decoder} {' '.join(overrides)}, "
        f"{REGIME_STEPS} steps, SSync from step {REGIME_SWITCH_ON} (branched from the base twin there)",
        overrides=(
            f"--config.num_train_steps={REGIME_STEPS}",
            f"--config.keep_checkpoint_steps=({REGIME_SWITCH_ON},)",
            *overrides,
        ),
        test=True,
        runs=tuple(runs),
    )


def _from_trained_sb(seeds: tuple[int, ...] = (0, 1, 2)) -> Study:
    """§1.8: SSync switched on in the trained 7-slot bases of `table7_sb` (same --root), where C3 holds.

    Each base at step 15,000 is continued for 5,000 steps on a 30,000-step schedule (so SSync's
    switch-on at 50 % is step 15,000, its settings otherwise the paper's), once with SSync and once
    without (the control: the same extra steps, the same learning rate); a 1-slot base trained like
    the Table 7 bases measures C4 at step 15,000.
    """
    # The schedule is twice the bases' so that a switch-on at 50 % is the bases' last step.
    later = (f"--config.num_train_steps={2 * REGIME_STEPS}", f"--config.stop_after_step={REGIME_STEPS + 5_000}")
    switch = ("--config.losses.ssync_boundary.warmup_fraction=0.5", "--config.losses.ssync_interior.warmup_fraction=0.5")
    runs = []
    for seed in seeds:
        settings = (f"--config.seed={seed}", "--config.model.num_slots=7", *later)
        parent = (f"base_slots7_seed{seed}", REGIME_STEPS)
        runs.append(Run(f"trained_ssync_slots7_seed{seed}", "ssync,sb", (*settings, *switch), branch=parent))
        runs.append(Run(f"trained_base_slots7_seed{seed}", "base,sb", settings, branch=parent))
    runs.append(Run("base_slots1_seed0", "base,sb", ("--config.seed=0", "--config.model.num_slots=1")))
    return Study(
        config="studies/configs/synthetic16.py",
        description=f"SSync from the trained 7-slot bases of table7_sb: step {REGIME_STEPS} continued to "
        f"{REGIME_STEPS + 5_000} on a {2 * REGIME_STEPS:,}-step schedule, with SSync from step {REGIME_STEPS} and without",
        overrides=(f"--config.num_train_steps={REGIME_STEPS}",),
        test=True,
        runs=tuple(runs),
    )


# §1.10: the paper's regime in miniature. Stage 1 trains a CNN on pixels on the 16x16 grid
# (studies/configs/synthetic16.py:base,sb, seed 2: the best of §1.7's three 7-slot bases on validation,
# see docs/RESULTS.md §1.10); stage 2 (studies/configs/synthetic16_features.py) trains fresh slots on its frozen tokens.
FEATURES_CONFIG = "studies/configs/synthetic16_features.py"
STAGE1 = Run("stage1", "base,sb", ("--config.seed=2",), config="studies/configs/synthetic16.py")
# Stage 1's result, shipped (`ssync_jax.tools.save_model` of STAGE1 at its last step): a retrained stage 1
# is another backbone on another CPU (XLA's code, and so the trajectory, differs between CPUs), so every
# stage-2 run takes this one. Relative to the repository root, where studies.learning runs main.py.
STAGE1_MODEL = "studies/backbones/synthetic16_stage1"
STAGE1_BACKBONE = (f"--config.model.encoder.backbone_from={STAGE1_MODEL}",)
# The stage-2 candidates of §1.10, each as its overrides of studies/configs/synthetic16_features.py.
FEATURE_CANDIDATES = {
    "a": (),  # The config as written: tokens standardised over channels, reconstruction weight 1.
    # Written after a's values (§1.10): b aims at C5, c at C2.
    "b": ("--config.losses.reconstruction.weight=10.0",),
    "c": ("--config.losses.reconstruction.weight=10.0", "--config.model.corrector.num_iterations=3"),
}


def _features_stage1() -> Study:
    """§1.10's stage 1: how `STAGE1_MODEL` was made (then `ssync_jax.tools.save_model`)."""
    return Study(
        config=STAGE1.config,
        description=f"Stage 1 of §1.10: {STAGE1.config}:{STAGE1.variant} with seed 2, to completion (validation)",
        test=False,
        runs=(STAGE1,),
    )


def _features_premise(candidate: str) -> Study:
    """§1.10: SSync's premise (C1-C5) on a stage-2 candidate's base at 30 % (validation split)."""
    settings = (*FEATURE_CANDIDATES[candidate], f"--config.stop_after_step={REGIME_SWITCH_ON}", "--config.seed=0")
    return Study(
        config=FEATURES_CONFIG,
        description=f"SSync's premise on {FEATURES_CONFIG}:base, candidate {candidate} "
        f"({' '.join(FEATURE_CANDIDATES[candidate]) or 'as written'}), at step {REGIME_SWITCH_ON} of {REGIME_STEPS}",
        test=False,
        runs=(
            Run(f"{candidate}_base_slots7_seed0", "base", (*settings, *STAGE1_BACKBONE, "--config.model.num_slots=7")),
            Run(f"{candidate}_base_slots1_seed0", "base", (*settings, *STAGE1_BACKBONE, "--config.model.num_slots=1")),
        ),
    )


def _features_table7(candidate: str, slots: tuple[int, ...] = (7, 15), seeds: tuple[int, ...] = (0, 1, 2)) -> Study:
    """§1.10: Table 7 in miniature on stage-2 candidate `candidate`: base vs SSync, 3 seeds, test split.

    Its 7-slot seed-0 base is the premise study's run, continued past step 4,500.
    """
    runs = []
    for count in slots:
        for seed in seeds:
            base = f"{candidate}_base_slots{count}_seed{seed}"
            settings = (*FEATURE_CANDIDATES[candidate], *STAGE1_BACKBONE, f"--config.seed={seed}",
                        f"--config.model.num_slots={count}")  # fmt: skip
            runs.append(Run(base, "base", settings))
            runs.append(Run(f"{candidate}_ssync_slots{count}_seed{seed}", "ssync", settings, branch=(base, REGIME_SWITCH_ON)))
    return Study(
        config=FEATURES_CONFIG,
        description=f"Table 7 in miniature on {FEATURES_CONFIG}, candidate {candidate}: base vs SSync from step "
        f"{REGIME_SWITCH_ON} (branched from the base twin there), {REGIME_STEPS} steps",
        test=True,
        runs=tuple(runs),
    )


# §1.10's factor arms: each one change to the chosen regime, a base and its SSync twin to FACTOR_STOP.
FACTOR_STOP = 2 * REGIME_SWITCH_ON
# The shipped default's CNN (stride 4: an 8x8 grid), stage 1 of the grid arm.
SHIPPED_DEFAULT = "ssync_jax/pretrained/default"
FACTORS = {
    "pixels": ("--config.model.decoder.target=video", "--config.model.decoder.patch_size=2"),
    "raw_tokens": ("--config.model.encoder.token_norm=none",),
    "grid8": ("--config.model.encoder.cnn_strides=(2,2,1,1)",),
}


def _features_factors(candidate: str, seeds: tuple[int, ...] = (0, 1)) -> Study:
    """§1.10's factor table: which change to the regime decides SSync's outcome (validation, step 9,000).

    Each arm is a base and its SSync twin branched at step 4,500, both stopped at FACTOR_STOP, beside
    the regime's own pair stopped there too (Table 7's runs of the same names, which that study then
    trains on to the end: the table reads every run at FACTOR_STOP). The trainable-backbone arm
    branches both from the regime's own base at step 4,500 (params only: a fresh optimizer with the
    backbone in it).
    """
    stop = (f"--config.stop_after_step={FACTOR_STOP}",)
    switch = ("--config.losses.ssync_boundary.warmup_fraction=0.0", "--config.losses.ssync_interior.warmup_fraction=0.0")
    runs = []
    for seed in seeds:
        settings = (*FEATURE_CANDIDATES[candidate], f"--config.seed={seed}", "--config.model.num_slots=7")
        regime = f"{candidate}_base_slots7_seed{seed}"
        for factor, change in {candidate: (), **FACTORS}.items():  # The regime's own pair first: no change.
            base = f"{factor}_base_slots7_seed{seed}"
            backbone = (f"--config.model.encoder.backbone_from={SHIPPED_DEFAULT}",) if factor == "grid8" else STAGE1_BACKBONE
            runs.append(Run(base, "base", (*settings, *change, *backbone, *stop)))
            runs.append(Run(f"{factor}_ssync_slots7_seed{seed}", "ssync", (*settings, *change, *backbone, *stop),
                            branch=(base, REGIME_SWITCH_ON)))  # fmt: skip
        # The trainable backbone: the regime's base at 30 % continued for the same 4,500 steps with the
        # backbone unfrozen, a fresh optimizer (its schedule over those steps), SSync on from the start.
        trainable = (*settings, "--config.model.encoder.freeze_backbone=False", "--config.init_from_params_only=True",
                     f"--config.num_train_steps={REGIME_STEPS - REGIME_SWITCH_ON}", f"--config.stop_after_step={FACTOR_STOP - REGIME_SWITCH_ON}")  # fmt: skip
        runs.append(Run(f"trainable_base_slots7_seed{seed}", "base", trainable, branch=(regime, REGIME_SWITCH_ON)))
        runs.append(Run(f"trainable_ssync_slots7_seed{seed}", "ssync", (*trainable, *switch), branch=(regime, REGIME_SWITCH_ON)))
    return Study(
        config=FEATURES_CONFIG,
        description=f"Factors of §1.10 on candidate {candidate}: one change each, base vs SSync (on at step "
        f"{REGIME_SWITCH_ON}), validation at step {FACTOR_STOP} (the trainable arm's: {FACTOR_STOP - REGIME_SWITCH_ON} "
        "steps after its branch)",
        test=False,
        report_step=FACTOR_STOP,
        runs=tuple(runs),
    )


STUDIES = {
    "ablations": _ablations,
    "premise_mlp": lambda: _premise("mlp"),
    "premise_sb": lambda: _premise("sb"),
    "table7_mlp": lambda: _table7("mlp"),
    "table7_sb": lambda: _table7("sb"),
    # The third candidate: slots of 32 values, so that one slot cannot carry a whole scene.
    "premise_sb32": lambda: _premise("sb", ("--config.model.slot_dim=32",)),
    "table7_sb32": lambda: _table7("sb", ("--config.model.slot_dim=32",)),
    "from_trained_sb": _from_trained_sb,
    "features_stage1": _features_stage1,
    **{f"features_premise_{c}": (lambda c=c: _features_premise(c)) for c in FEATURE_CANDIDATES},
    **{f"features_table7_{c}": (lambda c=c: _features_table7(c)) for c in FEATURE_CANDIDATES},
    **{f"features_factors_{c}": (lambda c=c: _features_factors(c)) for c in FEATURE_CANDIDATES},
}


def get(name: str) -> Study:
    if name not in STUDIES:
        raise KeyError(f"Unknown study {name!r}; the studies: {sorted(STUDIES)}")
    return dataclasses.replace(STUDIES[name](), name=name)
