"""DINOv2 in JAX equals the PyTorch model on a random-weight fixture (tests/fixtures/make_dinov2_fixture.py).

Fixture architecture: width 64, 2 blocks, 4 heads, MLP 256, patch 14, 37x37 position grid (518-pixel
pretraining size), so 224² and 336² inputs exercise the antialiased bicubic position resize.
"""

import json
import struct
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from ssync_jax.models import dinov2, dinov2_weights, state_dict_io

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HF_DIR = FIXTURES / "dinov2_tiny_hf"
TIMM_FILE = FIXTURES / "dinov2_tiny_timm.safetensors"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "dinov2_tiny_reference.npz") as data:
        return dict(data)


def normalised_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Top-left size x size crop, ImageNet-normalised, [1, size, size, 3]."""
    return ((image[:size, :size].astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)[None]


@pytest.mark.parametrize("size", [224, 336, 518])
def test_hugging_face_directory_matches_pytorch_within_1e4(reference, size):
    model, params = dinov2_weights.from_pretrained(HF_DIR, image_size=size)
    features = jax.jit(model.apply)({"params": params}, normalised_crop(reference["image"], size))
    assert features.shape == (1, (size // 14) ** 2, 64)
    np.testing.assert_allclose(features[0], reference[f"features_{size}"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [224, 336])
def test_timm_state_dict_matches_pytorch_within_1e4(reference, size):
    model, params = dinov2_weights.from_pretrained(TIMM_FILE, image_size=size, num_heads=4)
    features = jax.jit(model.apply)({"params": params}, normalised_crop(reference["image"], size))
    np.testing.assert_allclose(features[0], reference[f"features_{size}"], atol=1e-4, rtol=0)


def test_antialiased_position_resize_differs_from_plain_bicubic_at_336():
    """The 336² check above can tell the resize methods apart (Hugging Face's own resize is plain)."""
    _, params = dinov2_weights.from_pretrained(HF_DIR, image_size=336)
    patch_pos = params["pos_embed"][:, 1:].reshape(1, 37, 37, 64)
    plain = jax.image.resize(patch_pos, (1, 24, 24, 64), "bicubic", antialias=False).reshape(1, 576, 64)
    resized = dinov2.resize_position_embedding(params["pos_embed"], (24, 24), 37)[:, 1:]
    assert np.abs(np.asarray(resized) - np.asarray(plain)).max() > 1e-2


def test_bfloat16_compute_stays_close_to_float32(reference):
    image = normalised_crop(reference["image"], 224)
    model, params = dinov2_weights.from_pretrained(HF_DIR, image_size=224)
    model_bf16, _ = dinov2_weights.from_pretrained(HF_DIR, image_size=224, dtype=jnp.bfloat16)
    exact = np.asarray(jax.jit(model.apply)({"params": params}, image))
    approx = np.asarray(jax.jit(model_bf16.apply)({"params": params}, image), np.float32)
    assert np.abs(approx - exact).max() < 0.05 * np.abs(exact).max()


def test_input_size_not_multiple_of_patch_size_is_rejected():
    model = dinov2.DinoV2ViT(embed_dim=64, depth=1, num_heads=4)
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        model.init(jax.random.key(0), jnp.zeros((1, 30, 28, 3)))


def test_hub_name_without_huggingface_hub_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(FileNotFoundError, match="pip install huggingface_hub"):
        dinov2_weights.from_pretrained("facebook/dinov2-small")


def test_hub_name_offline_says_what_to_download_and_the_flag_to_pass(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline))
    message = r"config.json and model.safetensors.*pass --config.model.encoder.weights=DIR"
    with pytest.raises(FileNotFoundError, match=message):
        dinov2_weights.from_pretrained("facebook/dinov2-small")


def test_pth_file_without_torch_says_torch_is_needed(monkeypatch, tmp_path):
    path = tmp_path / "dinov2.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="needs PyTorch"):
        dinov2_weights.from_pretrained(path)


def test_safetensors_reader_decodes_a_hand_written_file(tmp_path):
    bf16 = np.array([1.5, -2.0], ml_dtypes.bfloat16).tobytes()
    f32 = np.arange(6, dtype=np.float32).tobytes()
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]},
    }
    blob = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + f32 + bf16)
    tensors = state_dict_io.load_safetensors(path)
    np.testing.assert_array_equal(tensors["a"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(tensors["b"].astype(np.float32), [1.5, -2.0])


def test_a_file_that_is_not_safetensors_is_named_in_the_error(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="weights.safetensors is not a readable safetensors file"):
        state_dict_io.load_safetensors(path)
