r"""The authors' PyTorch training step, on request: the other side of benchmarks/vs_authors.py.

Runs in the authors' torch virtualenv (see tests/fixtures/make_authors_fixture.py for how to make
it), never in ours: vs_authors.py starts it as a subprocess and talks to it in JSON lines on
stdin/stdout.

    {"case": "movi_c", "threads": 2, "authors_repo": DIR}  -> {"state": [[name, shape], ...], "torch": version}
    {"step": true}                     -> {"seconds": s, "loss": l}        one training step
    {"step": true, "autocast": "bfloat16"}  -> the same under torch.autocast("cpu", bfloat16)

Their model comes from their configs/SSync/movi_c.yaml through their `models.build`, with the case's
random weights (ssync_jax/tools/authors_case.py), so both sides compute with the same numbers. One
training step is what Lightning runs per batch with their settings, in float32 on the CPU: their
forward (SSync's pseudo-labels and merging included), `compute_loss` past the SSync warm-up,
backward, global-norm clipping at 0.05, their Adam and its learning-rate schedule. With "autocast",
forward and losses run under PyTorch's CPU mixed precision, as Lightning's `precision="bf16"` runs
a training step (their GPU runs use fp16 autocast, which the CPU does not have).
"""

import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    fixture = _load(REPO / "tests/fixtures/make_authors_fixture.py", "make_authors_fixture")
    case_module = fixture.load_case_module()
    setup = json.loads(sys.stdin.readline())
    authors_repo = Path(setup["authors_repo"])
    torch.set_num_threads(setup["threads"])
    authors = fixture.import_authors(authors_repo)
    case = case_module.CASES[setup["case"]]
    torch.manual_seed(case["seed"])
    model, _ = fixture.build_model(authors, case, authors_repo / "configs/SSync/movi_c.yaml")
    names_shapes = [(n, tuple(t.shape)) for n, t in model.state_dict().items()]
    state = case_module.random_state(names_shapes, case["seed"])
    model.load_state_dict({n: torch.from_numpy(v) for n, v in state.items()}, strict=True)
    model.train()
    model._trainer = types.SimpleNamespace(global_step=case["global_step"])
    optimizers = model.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    video = torch.from_numpy(authors_video(case_module, case, authors))
    parameters = [p for p in model.parameters() if p.requires_grad]
    print(json.dumps({"state": names_shapes, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if not request.get("step"):
            break
        autocast = request.get("autocast")
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=getattr(torch, autocast or "bfloat16"), enabled=autocast is not None):
            total, _ = model.compute_loss(model(dict(video=video)))
        total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 0.05)
        optimizer.step()
        scheduler.step()
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "loss": float(total)}), flush=True)


def authors_video(case_module, case: dict, authors) -> "torch.Tensor":
    """The case's video through their movi_val transform: float32 [B, T, 3, H, W] as numpy."""
    source_video, _ = case_module.random_video(case)
    config = dict(name="movi_val", type="video", input_size=case["image_size"], num_classes=case["num_classes"])
    transform = authors["transforms"].build(authors["OmegaConf"].create(config))["video"]
    return torch.stack([transform(v) for v in source_video]).numpy()


if __name__ == "__main__":
    main()
