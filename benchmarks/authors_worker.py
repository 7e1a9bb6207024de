r"""The authors' PyTorch training step, on request: the other side of benchmarks/vs_authors.py and
benchmarks/gpu_vs_authors.py.

Runs in a Python with torch and the authors' dependencies (their torch virtualenv, made as
tests/fixtures/make_authors_fixture.py says, or a GPU host's Python with benchmarks/gpu_bundle.sh's
wheels), never in ours: the benchmark starts it as a subprocess and talks to it in JSON lines on
stdin/stdout.

    {"case": "movi_c", "threads": 2, "authors_repo": DIR}  -> {"state": [[name, shape], ...], "torch": version, ...}
        optional: "overrides": {key: value} (the case's sizes, e.g. "batch"), "device": "cuda" or
        "cpu" (default), "memory_fraction": f (torch.cuda.set_per_process_memory_fraction)
    {"step": true}                     -> {"seconds": s, "loss": l, "peak_memory_bytes": b or null,
                                           "optimizer_step_skipped": GradScaler skipped it, or null}
    {"step": true, "autocast": "bfloat16"}  -> the same under torch.autocast(device, bfloat16)
    {"step": true, "precision": "16-mixed"} -> Lightning's precision=16: float16 autocast + GradScaler
    {"flops": true}                    -> {"flops": n}: torch's FlopCounterMode over one float32
                                          forward and backward (matmuls, convolutions, attention)
    {"step": false}                    -> the worker exits
A step that runs out of device memory answers {"oom": true, "error": text} and the worker exits.

Their model comes from their configs/SSync/movi_c.yaml through their `models.build`, with the case's
random weights (ssync_jax/tools/authors_case.py), so both sides compute with the same numbers. One
training step is what Lightning runs per batch with their settings: their forward (SSync's
pseudo-labels and merging included), `compute_loss` past the SSync warm-up, backward, global-norm
clipping at 0.05, their Adam and its learning-rate schedule (Lightning's logging is left out). With
"autocast", forward and losses run under PyTorch's mixed precision, as Lightning's
`precision="bf16"` runs a training step. With "precision": "16-mixed", as their train.py runs
(`pl.Trainer(precision=16, amp_backend="native")`, Lightning 1.9.5's MixedPrecisionPlugin): forward
and losses under float16 autocast, `scaler.scale(loss).backward()`, `scaler.unscale_`, clipping,
`scaler.step` (skipped where a gradient is not finite), `scaler.update`. float32 leaves torch's
TF32 switches as they are (their train.py turns TF32 on only with --use-optimizations, which their
README's commands do not pass). matplotlib, which their models.py imports for its figures alone, is
replaced by a stub where it is not installed.
"""

import importlib.machinery
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
LIGHTNING_16 = "16-mixed"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stub_matplotlib() -> bool:
    """Puts a stand-in for matplotlib.pyplot in place for their models.py if matplotlib is missing; True if so."""
    if importlib.util.find_spec("matplotlib") is not None:
        return False
    import pytorch_lightning  # noqa: F401 - they and torchmetrics look for matplotlib first, and find none
    import torchmetrics  # noqa: F401

    def missing(name):
        raise AttributeError(f"matplotlib is not installed (benchmarks/authors_worker.py stubbed it): {name}")

    for name in ("matplotlib", "matplotlib.pyplot"):
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)  # Lightning asks find_spec about it.
        stub.__getattr__ = missing
        sys.modules[name] = stub
    sys.modules["matplotlib"].pyplot = sys.modules["matplotlib.pyplot"]
    return True


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, getattr(torch, "OutOfMemoryError", ())) or "out of memory" in str(error).lower()


def _grad_scaler(device: str):
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device)
    return torch.cuda.amp.GradScaler(enabled=device == "cuda")


def float32_matmul_error(device: str) -> float:
    """Largest relative error of a 256x256x256 float32 matmul against float64: ~1e-7 in float32, ~1e-3 in TF32."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    ours = (torch.tensor(x, dtype=torch.float32, device=device) @ torch.tensor(y, dtype=torch.float32, device=device)).cpu()
    exact = x @ y
    return float(np.max(np.abs(ours.double().numpy() - exact)) / np.max(np.abs(exact)))


def main() -> None:
    fixture = _load(REPO / "tests/fixtures/make_authors_fixture.py", "make_authors_fixture")
    case_module = fixture.load_case_module()
    setup = json.loads(sys.stdin.readline())
    authors_repo = Path(setup["authors_repo"])
    device = setup.get("device", "cpu")
    torch.set_num_threads(setup["threads"])
    if device == "cuda" and setup.get("memory_fraction"):
        torch.cuda.set_per_process_memory_fraction(setup["memory_fraction"])
    stubbed = _stub_matplotlib()
    authors = fixture.import_authors(authors_repo)
    case = dict(case_module.CASES[setup["case"]], **setup.get("overrides", {}))
    torch.manual_seed(case["seed"])
    model, _ = fixture.build_model(authors, case, authors_repo / "configs/SSync/movi_c.yaml")
    names_shapes = [(n, tuple(t.shape)) for n, t in model.state_dict().items()]
    state = case_module.random_state(names_shapes, case["seed"])
    model.load_state_dict({n: torch.from_numpy(v) for n, v in state.items()}, strict=True)
    model.to(device)
    model.train()
    model._trainer = types.SimpleNamespace(global_step=case["global_step"])
    optimizers = model.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    video = torch.from_numpy(authors_video(case_module, case, authors)).to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    scaler = _grad_scaler(device)
    cuda = device == "cuda"
    print(
        json.dumps(
            {
                "state": names_shapes,
                "torch": torch.__version__,
                "torch_cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if cuda else None,
                "device_name": torch.cuda.get_device_name() if cuda else "cpu",
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "float32_matmul_relative_error": float32_matmul_error(device),
                "matplotlib_stubbed": stubbed,
                "case": case,
            }
        ),
        flush=True,
    )

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for line in sys.stdin:
        request = json.loads(line)
        if request.get("flops"):
            print(json.dumps(count_flops(model, video)), flush=True)
            continue
        if not request.get("step"):
            break
        precision = request.get("precision")
        autocast = "float16" if precision == LIGHTNING_16 else request.get("autocast")
        try:
            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=getattr(torch, autocast or "bfloat16"), enabled=autocast is not None):
                total, _ = model.compute_loss(model(dict(video=video)))
            skipped = None
            if precision == LIGHTNING_16:
                scale = scaler.get_scale()
                scaler.scale(total).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, 0.05)
                scaler.step(optimizer)
                scaler.update()
                skipped = scaler.get_scale() < scale  # It halves the scale where it skipped the step.
            else:
                total.backward()
                torch.nn.utils.clip_grad_norm_(parameters, 0.05)
                optimizer.step()
            scheduler.step()
            sync()
            seconds = time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 - an OOM ends the worker with a reply, anything else too
            if not _is_oom(error):
                raise
            print(json.dumps({"oom": True, "error": str(error)[:500]}), flush=True)
            return
        peak = torch.cuda.max_memory_allocated() if cuda else None
        reply = {"seconds": seconds, "loss": float(total), "peak_memory_bytes": peak, "optimizer_step_skipped": skipped}
        print(json.dumps(reply), flush=True)


def count_flops(model, video) -> dict:
    """torch's FlopCounterMode over one float32 forward, losses and backward (gradients dropped after)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            total, _ = model.compute_loss(model(dict(video=video)))
            total.backward()
        model.zero_grad(set_to_none=True)
        return {"flops": int(counter.get_total_flops())}
    except Exception as error:  # noqa: BLE001 - the count is a side figure; say why it is missing
        model.zero_grad(set_to_none=True)
        return {"flops": None, "error": f"{type(error).__name__}: {str(error)[:300]}"}


def authors_video(case_module, case: dict, authors) -> "torch.Tensor":
    """The case's video through their movi_val transform: float32 [B, T, 3, H, W] as numpy."""
    source_video, _ = case_module.random_video(case)
    config = dict(name="movi_val", type="video", input_size=case["image_size"], num_classes=case["num_classes"])
    transform = authors["transforms"].build(authors["OmegaConf"].create(config))["video"]
    return torch.stack([transform(v) for v in source_video]).numpy()


if __name__ == "__main__":
    main()
