"""Video files in and out (`ssync_jax.video_io`) and the visualisation tool, the latter on the tiny
trained workdir of tests/test_inference.py (validation split: 2 videos of 3 frames, labels at 32x32).
"""

import numpy as np
import pytest
from PIL import Image

from ssync_jax import inference, video_io
from ssync_jax.data import transforms
from ssync_jax.summaries import PALETTE
from ssync_jax.tools import visualize
from tests.test_inference import shared_compilation_cache, trained_workdir  # noqa: F401 (an autouse fixture)


def smooth_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] gradients that shift with t: easy for lossy codecs, different every frame."""
    rows, cols = np.mgrid[:height, :width]
    frames = [
        np.stack([(rows * 4 + 8 * t) % 256, (cols * 3 + 60) % 256, np.full_like(rows, 100 + 20 * t)], -1)
        for t in range(num_frames)
    ]
    return np.stack(frames).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# video_io


def test_a_folder_of_png_frames_reads_back_exactly_in_file_name_order(tmp_path):
    frames = smooth_frames(3, 10, 14)
    for t in (2, 0, 1):  # Written out of order: the names decide.
        Image.fromarray(frames[t]).save(tmp_path / f"frame_{t:03d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    video = video_io.read_video(tmp_path)
    assert video.dtype == np.uint8
    np.testing.assert_array_equal(video, frames)


@pytest.mark.parametrize("extension, mean_error", [(".mp4", 4.0), (".gif", 4.0)])
def test_lossy_formats_keep_the_frame_count_size_and_approximate_colours(tmp_path, extension, mean_error):
    frames = smooth_frames(4, 32, 48)
    path = tmp_path / f"video{extension}"
    video_io.write_video(path, frames, fps=8)
    video = video_io.read_video(path)
    assert video.shape == frames.shape and video.dtype == np.uint8
    assert np.abs(video.astype(int) - frames).mean() < mean_error


def test_mp4_pads_odd_sides_to_even_by_repeating_the_edge(tmp_path):
    frames = smooth_frames(2, 15, 21)
    video_io.write_video(tmp_path / "odd.mp4", frames, fps=5)
    assert video_io.read_video(tmp_path / "odd.mp4").shape == (2, 16, 22, 3)


def test_writing_rejects_unknown_extensions_and_non_uint8_frames_before_touching_the_file(tmp_path):
    path = tmp_path / "kept.gif"
    video_io.write_video(path, smooth_frames(2, 8, 8), fps=4)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"ending in one of \('.gif', '.mp4'\)"):
        video_io.write_video(tmp_path / "video.avi", smooth_frames(2, 8, 8))
    with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\].*astype\(np.uint8\)"):
        video_io.write_video(path, np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        video_io.write_video(path, np.zeros((0, 8, 8, 3), np.uint8))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.gif"]  # No partial files left behind.


def test_reading_errors_name_the_input_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="No video at .*missing.mp4"):
        video_io.read_video(tmp_path / "missing.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(b"these bytes are no video")
    with pytest.raises(ValueError, match="Cannot decode .*corrupt.mp4.*re-encode"):
        video_io.read_video(tmp_path / "corrupt.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty holds no .png/.jpg/.jpeg frames"):
        video_io.read_video(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(smooth_frames(1, 8, 8)[0]).save(mixed / "a.png")
    Image.fromarray(smooth_frames(1, 8, 6)[0]).save(mixed / "b.png")
    with pytest.raises(ValueError, match=r"b.png is 6x8 but .*a.png is 8x8.*resize them"):
        video_io.read_video(mixed)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.png").write_bytes(b"\x89PNG but nothing more")
    with pytest.raises(ValueError, match="Cannot read the frame .*0.png"):
        video_io.read_video(broken)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_panels_are_label_pixels_enlarged_by_a_whole_factor_to_at_least_128_high():
    assert visualize.panel_size((32, 32)) == (128, 128)
    assert visualize.panel_size((24, 40)) == (144, 240)  # x6: x5 would be 120 high.
    assert visualize.panel_size((128, 128)) == (128, 128)
    assert visualize.panel_size((300, 200)) == (300, 200)


@pytest.mark.parametrize("normalization", transforms.NORMALIZATIONS)
def test_display_frames_undo_the_normalisation(normalization):
    frames = smooth_frames(2, 6, 6)
    model_input = transforms.normalize(frames / np.float32(255), normalization)
    shown = visualize.display_frames(model_input, normalization, (6, 6))
    np.testing.assert_allclose(shown, frames / 255.0, atol=1e-6)


def tinted_black(slot: int) -> np.ndarray:
    """A black pixel tinted by a slot's colour at the overlay's 60 % opacity."""
    return 0.6 * PALETTE[slot]


def test_slot_colours_follow_the_ids_and_ssync_patches_are_outlined():
    frames = np.zeros((2, 4, 4, 3), np.float32)  # Black, so each pixel shows 0.6 x its id's colour.
    masks = np.zeros((2, 4, 4), np.int32)
    masks[0, :, 2:] = 1  # Slot 1 on the right in frame 0, on the left in frame 1.
    masks[1, :, :2] = 1
    true_ids = np.full((2, 2, 2), 2, np.int32)  # Label resolution half the panel's.
    true_ids[:, 1, 1] = 0  # Background: the bottom-right quarter of the panel.
    grid = np.zeros((2, 2, 2), np.int32)  # A 2x2 patch grid.
    first_patch = np.zeros((2, 2, 2), bool)
    first_patch[:, 0, 0] = True
    targets = {"enc_labels": grid, "dec_labels": grid + 1, "boundary_mask": first_patch, "interior_mask": first_patch}
    panels = visualize.render_panels(frames, masks, true_ids, targets)
    assert len(panels) == len(visualize.PANEL_TITLES) and all(p.shape == (2, 4, 4, 3) for p in panels)
    np.testing.assert_array_equal(panels[0], frames)
    np.testing.assert_allclose(panels[1][0, 0, 3], tinted_black(1), atol=1e-6)
    np.testing.assert_allclose(panels[1][1, 0, 0], tinted_black(1), atol=1e-6)
    np.testing.assert_allclose(panels[1][0, 0, 0], tinted_black(0), atol=1e-6)
    np.testing.assert_allclose(panels[2][:, :2], np.broadcast_to(tinted_black(2), (2, 2, 4, 3)), atol=1e-6)
    np.testing.assert_allclose(panels[2][:, 2:, :2], np.broadcast_to(tinted_black(2), (2, 2, 2, 3)), atol=1e-6)
    np.testing.assert_array_equal(panels[2][:, 2:, 2:], 0.0)  # The frame itself.
    # The top-left patch covers pixels [0:2, 0:2]; its outline is the three pixels that touch
    # the rest of the frame (the frame's own edge does not count). Boundary white, interior black.
    outline = np.zeros((4, 4), bool)
    outline[[0, 1, 1], [1, 0, 1]] = True
    for panel, label, mark in ((panels[3], 0, 1.0), (panels[4], 1, 0.0)):
        np.testing.assert_allclose(panel[:, outline], mark)
        np.testing.assert_allclose(panel[:, ~outline], np.broadcast_to(tinted_black(label), (2, 13, 3)), atol=1e-6)


def test_compose_puts_panels_side_by_side_under_their_titles():
    white, black = np.ones((1, 8, 10, 3), np.float32), np.zeros((1, 8, 10, 3), np.float32)
    canvas = visualize.compose([white, black], [("left", "")])
    top = visualize.TITLE_HEIGHT
    assert canvas.shape == (1, top + 8, 2 * 10 + visualize.GAP, 3) and canvas.dtype == np.uint8
    assert (canvas[0, top:, :10] == 255).all() and (canvas[0, top:, 10 + visualize.GAP :] == 0).all()
    assert (canvas[0, :, 10 : 10 + visualize.GAP] == 32).all()  # The gap.
    assert canvas[0, :top, :10].max() > 200  # The title's white text.
    assert (canvas[0, :top, 10:] == 32).all()  # No title over the second panel.


# ---------------------------------------------------------------------------------------------
# The tool on a trained workdir


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> inference.Predictor:
    return inference.load(trained_workdir(tmp_path_factory))


def test_png_still_stacks_the_first_middle_and_last_frames(predictor, tmp_path, monkeypatch):
    written = []  # The exact frames a video would get, caught before the lossy GIF encoder.
    monkeypatch.setattr(visualize.video_io, "write_video", lambda path, frames, fps: written.append(frames))
    visualize.write_visualizations(predictor, "validation", 1, str(tmp_path / "gif"), "gif")
    (png,) = visualize.write_visualizations(predictor, "validation", 1, str(tmp_path / "png"), "png")
    (frames,) = written  # [3, H, W, 3]: first, middle and last are all of them
    np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), np.concatenate(list(frames)))
    tall = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
    np.testing.assert_array_equal(visualize.still_frames(tall), np.concatenate([tall[0], tall[2], tall[4]]))


@pytest.mark.parametrize("video_format, num", [("gif", 1), ("mp4", 5)])
def test_one_video_per_dataset_video_with_every_frame_and_the_panel_layout(predictor, tmp_path, video_format, num):
    paths = visualize.write_visualizations(predictor, "validation", num, str(tmp_path), video_format, fps=4)
    expected = [f"validation_{i:04d}.{video_format}" for i in range(min(num, 2))]  # The split has 2.
    assert [path.rsplit("/", 1)[1] for path in paths] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    height, width = visualize.panel_size((32, 32))
    panels = len(visualize.PANEL_TITLES)
    for path in paths:
        video = video_io.read_video(path)
        assert video.shape == (3, visualize.TITLE_HEIGHT + height, panels * width + (panels - 1) * visualize.GAP, 3)
