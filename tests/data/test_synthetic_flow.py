"""Optical flow of the generator: it warps neighbouring frames onto each other and follows the poses.

Two independent checks: warping the neighbour frame with the decoded flow (scipy bilinear sampling)
reproduces the frame on pixels that are not occluded, and re-deriving each pixel's flow from the
stored depth, instance poses and camera (scipy rotations, a pinhole model written here) matches.
Colour checks cannot be exact: textures alias at 48 x 64 and shading changes as objects turn.
"""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from tests.data.synthetic_cases import LINEAR, STATIC, decode, video


def warp_errors(example: dict, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel colour error of frame t against the neighbour sampled at p + flow(p), and unwarped.

    Returns:
        (warped errors, unwarped errors) over the comparable moving pixels of all frames.
    """
    step = 1 if direction == "forward" else -1
    flow = decode(example[f"{direction}_flow"], example["metadata"][f"{direction}_flow_range"])
    frames = example["video"].astype(np.float64)
    segmentation = example["segmentations"][..., 0]
    num_frames, height, width, _ = frames.shape
    rows, columns = np.mgrid[:height, :width].astype(np.float64)
    warped_errors, unwarped_errors = [], []
    for t in range(num_frames) if direction == "forward" else range(1, num_frames):
        if not 0 <= t + step < num_frames:
            continue
        target_rows, target_columns = rows + flow[t, ..., 0], columns + flow[t, ..., 1]
        inside = (target_rows >= 0) & (target_rows <= height - 1)
        inside &= (target_columns >= 0) & (target_columns <= width - 1)
        # The four pixels the bilinear sample mixes must all show the same instance as the source.
        same = inside.copy()
        for row_offset in (np.floor, np.ceil):
            for column_offset in (np.floor, np.ceil):
                r = np.clip(row_offset(target_rows), 0, height - 1).astype(int)
                c = np.clip(column_offset(target_columns), 0, width - 1).astype(int)
                same &= segmentation[t + step][r, c] == segmentation[t]
        comparable = same & (np.hypot(flow[t, ..., 0], flow[t, ..., 1]) > 0.5)
        targets = [target_rows, target_columns]
        neighbour = frames[t + step]
        sampled = np.stack([ndimage.map_coordinates(neighbour[..., c], targets, order=1) for c in range(3)], axis=-1)
        warped_errors.append(np.abs(sampled - frames[t]).mean(axis=-1)[comparable])
        unwarped_errors.append(np.abs(frames[t + step] - frames[t]).mean(axis=-1)[comparable])
    return np.concatenate(warped_errors), np.concatenate(unwarped_errors)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("spec", [STATIC, LINEAR], ids=["static", "linear"])
def test_warping_the_neighbour_frame_with_the_flow_reproduces_the_frame(spec, direction):
    warped, unwarped = warp_errors(video(spec, 11), direction)
    assert warped.size > 200
    assert np.median(warped) < 10.0  # out of 255
    assert warped.mean() < 0.5 * unwarped.mean()


def rotation(quaternion: np.ndarray) -> Rotation:
    w, x, y, z = quaternion
    return Rotation.from_quat([x, y, z, w])


def project(example: dict, frame: int, points: np.ndarray) -> np.ndarray:
    """(row, column) pixel coordinates of world points [..., 3] in a frame (pixel centres at integers)."""
    camera = example["camera"]
    height, width = example["metadata"]["height"], example["metadata"]["width"]
    focal = camera["focal_length"] / camera["sensor_width"] * width
    local = rotation(camera["quaternions"][frame]).inv().apply((points - camera["positions"][frame]).reshape(-1, 3))
    local = local.reshape(points.shape)
    distance = -local[..., 2]
    row = -focal * local[..., 1] / distance + height / 2 - 0.5
    column = focal * local[..., 0] / distance + width / 2 - 0.5
    return np.stack([row, column], axis=-1)


@pytest.mark.parametrize("spec", [STATIC, LINEAR], ids=["static", "linear"])
def test_forward_flow_follows_each_visible_point_to_its_pose_in_the_next_frame(spec):
    example = video(spec, 12)
    camera, instances = example["camera"], example["instances"]
    depth = decode(example["depth"][..., 0], example["metadata"]["depth_range"])
    flow = decode(example["forward_flow"], example["metadata"]["forward_flow_range"])
    segmentation = example["segmentations"][..., 0]
    height, width = segmentation.shape[1:]
    focal = camera["focal_length"] / camera["sensor_width"] * width
    rows, columns = np.mgrid[:height, :width] + 0.5
    local_rays = np.stack([(columns - width / 2) / focal, -(rows - height / 2) / focal, -np.ones_like(rows)], -1)
    local_rays /= np.linalg.norm(local_rays, axis=-1, keepdims=True)
    for t in range(spec.num_frames - 1):
        rays = rotation(camera["quaternions"][t]).apply(local_rays.reshape(-1, 3)).reshape(local_rays.shape)
        points = camera["positions"][t] + rays * depth[t][..., None]  # [h, w, 3]
        moved = points.copy()  # the background does not move
        for k in range(len(instances["shape"])):
            mask = segmentation[t] == k + 1
            body = rotation(instances["quaternions"][k, t]).inv().apply(points[mask] - instances["positions"][k, t])
            moved[mask] = rotation(instances["quaternions"][k, t + 1]).apply(body) + instances["positions"][k, t + 1]
        expected = project(example, t + 1, moved) - np.stack(np.mgrid[:height, :width], -1)
        np.testing.assert_allclose(flow[t], expected, atol=0.05)


def test_static_camera_background_has_zero_flow_and_moving_camera_does_not():
    for spec, moving in ((STATIC, False), (LINEAR, True)):
        example = video(spec, 11)
        flow = decode(example["forward_flow"], example["metadata"]["forward_flow_range"])[:-1]
        step = np.diff(example["metadata"]["forward_flow_range"])[0] / 65535
        background = example["segmentations"][:-1, ..., 0] == 0
        magnitude = np.abs(flow[background]).max()
        assert (magnitude > 0.1) if moving else (magnitude <= step)


def test_flow_is_zero_in_the_frame_without_a_neighbour():
    example = video(LINEAR, 11)
    forward = decode(example["forward_flow"], example["metadata"]["forward_flow_range"])
    backward = decode(example["backward_flow"], example["metadata"]["backward_flow_range"])
    forward_step = np.diff(example["metadata"]["forward_flow_range"])[0] / 65535
    backward_step = np.diff(example["metadata"]["backward_flow_range"])[0] / 65535
    assert np.abs(forward[-1]).max() <= forward_step and np.abs(backward[0]).max() <= backward_step
