"""Specification of the procedural MOVi-format generator: interface, labels, depth, boxes, determinism.

Checks use independent machinery (scipy rotations, point-in-shape tests along each ray, numpy mask
scans) rather than the renderer's own code paths.
"""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssync_jax.data.synthetic import SceneSpec, generate_video
from ssync_jax.data.synthetic.render import quantize
from tests.data.synthetic_cases import LINEAR, PLAIN, STATIC, decode, video


def pixel_rays(example: dict, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre [3] and unit world rays [h, w, 3] through pixel centres, from the camera fields."""
    camera = example["camera"]
    height, width = example["metadata"]["height"], example["metadata"]["width"]
    focal = camera["focal_length"] / camera["sensor_width"] * width
    rows, columns = np.mgrid[:height, :width] + 0.5
    local = np.stack([(columns - width / 2) / focal, -(rows - height / 2) / focal, -np.ones_like(rows)], -1)
    local /= np.linalg.norm(local, axis=-1, keepdims=True)
    w, x, y, z = camera["quaternions"][frame]
    rays = Rotation.from_quat([x, y, z, w]).apply(local.reshape(-1, 3)).reshape(local.shape)
    return camera["positions"][frame], rays


def inside_objects(example: dict, frame: int, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """[n, ...] whether world points lie inside each instance (shrunk by margin), by point-in-shape tests."""
    instances = example["instances"]
    result = []
    for shape, scale, position, quaternion in zip(
        instances["shape"], instances["scale"], instances["positions"][:, frame], instances["quaternions"][:, frame]
    ):
        w, x, y, z = quaternion
        local = Rotation.from_quat([x, y, z, w]).inv().apply((points - position).reshape(-1, 3)).reshape(points.shape)
        size = scale - margin
        if shape == 0:
            result.append(np.linalg.norm(local, axis=-1) <= size)
        elif shape == 1:
            result.append(np.max(np.abs(local), axis=-1) <= size)
        else:
            result.append((np.hypot(local[..., 0], local[..., 1]) <= size) & (np.abs(local[..., 2]) <= size))
    return np.array(result)


def test_example_has_every_interface_field_with_its_dtype_and_shape():
    example = video(STATIC, 0)
    s, h, w, n = 6, 48, 64, example["metadata"]["num_instances"]
    assert 3 <= n <= 5
    expected = {
        "video": (np.uint8, (s, h, w, 3)),
        "segmentations": (np.uint8, (s, h, w, 1)),
        "depth": (np.uint16, (s, h, w, 1)),
        "forward_flow": (np.uint16, (s, h, w, 2)),
        "backward_flow": (np.uint16, (s, h, w, 2)),
    }
    for key, (dtype, shape) in expected.items():
        assert example[key].dtype == dtype and example[key].shape == shape, key
    instances = {
        "shape": (n,), "scale": (n,), "mass": (n,), "friction": (n,), "restitution": (n,),
        "positions": (n, s, 3), "quaternions": (n, s, 4), "velocities": (n, s, 3),
        "angular_velocities": (n, s, 3), "bboxes_3d": (n, s, 8, 3), "image_positions": (n, s, 2),
        "visibility": (n, s),
    }  # fmt: skip
    for key, shape in instances.items():
        assert example["instances"][key].shape == shape, key
    assert example["instances"]["visibility"].dtype == np.uint16
    assert example["instances"]["positions"].dtype == np.float32
    assert len(example["instances"]["bboxes"]) == len(example["instances"]["bbox_frames"]) == n
    metadata = example["metadata"]
    assert (metadata["width"], metadata["height"], metadata["num_frames"]) == (w, h, s)
    for key in ("depth_range", "forward_flow_range", "backward_flow_range"):
        assert metadata[key].dtype == np.float32 and metadata[key].shape == (2,)
    assert example["camera"]["positions"].shape == (s, 3) and example["camera"]["quaternions"].shape == (s, 4)
    assert isinstance(example["background"], str) and isinstance(metadata["video_name"], str)


@pytest.mark.parametrize("spec", [STATIC, LINEAR], ids=["static", "linear"])
def test_segmentation_pixel_counts_equal_visibility_and_ids_sort_by_total_visibility(spec):
    example = video(spec, 1)
    segmentation = example["segmentations"][..., 0]
    visibility = example["instances"]["visibility"]
    n = example["metadata"]["num_instances"]
    assert segmentation.max() <= n
    for k in range(1, n + 1):
        counts = (segmentation == k).sum(axis=(1, 2))
        np.testing.assert_array_equal(counts, visibility[k - 1])
    totals = visibility.sum(axis=1).astype(int)
    assert np.all(np.diff(totals) <= 0)


@pytest.mark.parametrize("spec", [STATIC, LINEAR], ids=["static", "linear"])
def test_boxes_are_tight_around_masks_in_exactly_the_visible_frames(spec):
    example = video(spec, 2)
    segmentation = example["segmentations"][..., 0]
    _, h, w = segmentation.shape
    instances = example["instances"]
    for k, (boxes, frames) in enumerate(zip(instances["bboxes"], instances["bbox_frames"])):
        np.testing.assert_array_equal(frames, np.flatnonzero(instances["visibility"][k] > 0))
        assert boxes.shape == (len(frames), 4)
        for box, frame in zip(boxes, frames):
            rows, columns = np.nonzero(segmentation[frame] == k + 1)
            expected = [rows.min() / h, columns.min() / w, (rows.max() + 1) / h, (columns.max() + 1) / w]
            np.testing.assert_allclose(box, expected, atol=1e-6)


@pytest.mark.parametrize("spec", [STATIC, LINEAR], ids=["static", "linear"])
def test_each_pixel_shows_the_first_object_its_ray_enters(spec):
    """Walk every ray with point-in-shape tests: nothing before the depth, the labelled object right after."""
    example = video(spec, 3)
    depth = decode(example["depth"][..., 0], example["metadata"]["depth_range"])
    segmentation = example["segmentations"][..., 0]
    for frame in (0, spec.num_frames - 1):
        origin, rays = pixel_rays(example, frame)
        distance = depth[frame][..., None]  # [h, w, 1]
        before = origin + rays[:, :, None, :] * (distance * np.linspace(0.02, 0.98, 50))[..., None]  # [h, w, 50, 3]
        occluded = inside_objects(example, frame, before, margin=0.02).any(axis=(0, 3))  # [h, w]
        assert occluded.mean() < 0.002
        just_after = inside_objects(example, frame, origin + rays * (distance + 0.02))  # [n, h, w]
        labelled = segmentation[frame] > 0
        hits = just_after[segmentation[frame][labelled] - 1, np.nonzero(labelled)[0], np.nonzero(labelled)[1]]
        assert hits.mean() > 0.98
        background = origin + rays * distance  # [h, w, 3]
        on_floor = np.abs(background[..., 2]) < 0.01
        on_dome = np.abs(np.linalg.norm(background, axis=-1) - spec.dome_radius) < 0.05
        assert np.all(on_floor | on_dome | labelled)


def test_background_is_farther_than_objects_that_cover_it():
    example = video(LINEAR, 4)
    depth = decode(example["depth"][..., 0], example["metadata"]["depth_range"])
    segmentation = example["segmentations"][..., 0]
    # Across every horizontal object -> background edge the background side is deeper.
    left, right = segmentation[:, :, :-1], segmentation[:, :, 1:]
    edge = (left > 0) & (right == 0)
    assert edge.sum() > 10
    assert np.all(depth[:, :, 1:][edge] > depth[:, :, :-1][edge])


def test_same_seed_gives_identical_arrays_and_different_seeds_differ():
    first, again = generate_video(STATIC, 5), generate_video(STATIC, 5)
    for key in ("video", "segmentations", "depth", "forward_flow", "backward_flow"):
        np.testing.assert_array_equal(first[key], again[key])
    np.testing.assert_array_equal(first["instances"]["positions"], again["instances"]["positions"])
    other = video(STATIC, 6)
    assert not np.array_equal(first["video"], other["video"])


def test_quantisation_round_trips_within_one_step_of_the_range():
    values = np.random.default_rng(0).normal(size=(3, 5, 7, 2)).astype(np.float32) * 4
    encoded, value_range = quantize(values)
    step = (value_range[1] - value_range[0]) / 65535
    np.testing.assert_allclose(value_range, [values.min(), values.max()])
    assert np.max(np.abs(decode(np.asarray(encoded), np.asarray(value_range)) - values)) <= step
    constant, constant_range = quantize(np.full((4,), 2.5, np.float32))
    np.testing.assert_array_equal(decode(np.asarray(constant), np.asarray(constant_range)), 2.5)


def test_generated_depth_and_flow_decode_within_one_quantisation_step():
    example = video(STATIC, 0)
    depth_range = example["metadata"]["depth_range"]
    depth = decode(example["depth"], depth_range)
    assert depth.min() == pytest.approx(depth_range[0], abs=1e-4)
    assert depth.max() == pytest.approx(depth_range[1], rel=1e-6)
    # Flows: exactly zero where undefined (last frame forward) must decode to ~0.
    flow_range = example["metadata"]["forward_flow_range"]
    step = (flow_range[1] - flow_range[0]) / 65535
    assert np.max(np.abs(decode(example["forward_flow"][-1], flow_range))) <= step


def distinct_colours(pixels: np.ndarray) -> int:
    """Number of different RGB triples among [..., 3] uint8 pixels."""
    return len(np.unique(pixels.reshape(-1, 3), axis=0))


def test_plain_and_checker_scenes_of_a_seed_differ_only_in_colour():
    for seed in range(3):
        plain, checker = video(PLAIN, seed), video(STATIC, seed)
        for key in ("segmentations", "depth", "forward_flow", "backward_flow"):
            np.testing.assert_array_equal(plain[key], checker[key])
        assert not np.array_equal(plain["video"], checker["video"])
        assert plain["background"] != checker["background"]


def test_plain_background_is_one_floor_colour_and_one_sky_colour():
    # A flat floor under one directional light shades uniformly, so only a texture can vary it.
    floors_seen = skies_seen = 0
    for seed in range(4):
        plain, checker = video(PLAIN, seed), video(STATIC, seed)
        depth = decode(plain["depth"][..., 0], plain["metadata"]["depth_range"])
        for frame in (0, PLAIN.num_frames - 1):
            origin, rays = pixel_rays(plain, frame)
            points = origin + rays * depth[frame][..., None]  # [h, w, 3] the visible points
            background = plain["segmentations"][frame, ..., 0] == 0
            # The dome meets the floor at the horizon, where quantised depth cannot tell them apart.
            distance = np.linalg.norm(points, axis=-1)
            floor = background & (distance < 0.9 * PLAIN.dome_radius) & (np.abs(points[..., 2]) < 0.01)
            sky = background & (distance > 0.95 * PLAIN.dome_radius) & (points[..., 2] > 0.5)
            for region in (floor, sky):
                if region.sum() >= 40:
                    assert distinct_colours(plain["video"][frame][region]) == 1
                    assert distinct_colours(checker["video"][frame][region]) > 1
            floors_seen += floor.sum() >= 40
            skies_seen += sky.sum() >= 40
    assert floors_seen >= 4 and skies_seen >= 1


def test_plain_cubes_show_one_colour_per_visible_face():
    # A cube's face is flat, so its shade is constant: a plain cube shows at most three colours per
    # frame (three faces face the camera at most); a checkered one shows two tones on a face.
    cubes_seen = 0
    for seed in range(6):
        plain, checker = video(PLAIN, seed), video(STATIC, seed)
        segmentation = plain["segmentations"][..., 0]
        for instance in np.flatnonzero(plain["instances"]["shape"] == 1):
            for frame in range(PLAIN.num_frames):
                mask = segmentation[frame] == instance + 1
                if mask.sum() < 40:  # Too few pixels to show a checker edge.
                    continue
                cubes_seen += 1
                assert distinct_colours(plain["video"][frame][mask]) <= 3
                assert distinct_colours(checker["video"][frame][mask]) > 3
    assert cubes_seen >= 5


def test_spec_rejects_unknown_camera_motion_texture_and_too_many_objects():
    with pytest.raises(ValueError, match="camera_motion"):
        SceneSpec(height=8, width=8, camera_motion="orbit")
    with pytest.raises(ValueError, match="texture"):
        SceneSpec(height=8, width=8, texture="marble")
    with pytest.raises(ValueError, match="max_objects"):
        SceneSpec(height=8, width=8, max_objects=300)
