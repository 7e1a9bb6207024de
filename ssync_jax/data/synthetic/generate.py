"""`generate_video`: one MOVi-format example (Kubric feature names, dtypes and shapes) from a seed."""

from typing import Any

import jax.numpy as jnp
import numpy as np

from ssync_jax.data.synthetic import geometry, physics, render
from ssync_jax.data.synthetic.scene import Scene, SceneSpec, sample_scene

# The example's "background" field, per SceneSpec.texture.
BACKGROUNDS = {
    "checker": "procedural: checkered floor plane inside a gradient sky dome with faint checks",
    "plain": "procedural: plain floor plane inside a plain sky dome",
}
# Brightness of the dome's dark checks, per SceneSpec.texture.
DOME_CHECK_SHADES = {"checker": 0.9, "plain": 1.0}


def generate_video(spec: SceneSpec, seed: int) -> dict[str, Any]:
    """Samples, simulates and renders one video, deterministically in (spec, seed).

    Args:
        spec: kind of scene and video size.
        seed: seed of the numpy Generator that draws everything random.

    Returns:
        The example dict of the data interface (MOVi field names; s frames, h x w, n instances,
        instances sorted by total visible pixel count, most visible first).
    """
    scene = sample_scene(spec, np.random.default_rng(seed))
    trajectories = physics.simulate(
        scene.bodies, spec.num_frames, spec.frame_rate, spec.physics_substeps, padded_count=spec.max_objects
    )
    object_rotations = geometry.quaternion_to_matrix(trajectories.quaternions)  # [n, s, 3, 3]
    camera_rotations = geometry.quaternion_to_matrix(scene.camera_quaternions)  # [s, 3, 3]
    focal_pixels = geometry.focal_length_pixels(spec.focal_length, spec.sensor_width, spec.width)
    inputs = renderer_inputs(spec, scene, trajectories, object_rotations, camera_rotations, focal_pixels)
    frames = render.render_video(inputs, height=spec.height, width=spec.width)
    num_objects = len(scene.scale)
    counts, rows, columns = _mask_statistics(np.asarray(frames.segmentation), num_objects + 1)

    # Instance k of the output is input object order[k]; its segmentation id is k + 1.
    visibility = counts[:, 1 : num_objects + 1].T  # [n, s]
    order = np.argsort(-visibility.sum(axis=1), kind="stable")
    relabel = np.zeros(num_objects + 1, np.uint8)
    relabel[order + 1] = np.arange(1, num_objects + 1)
    segmentation = relabel[np.asarray(frames.segmentation)]  # [s, h, w]
    bboxes, bbox_frames = _bounding_boxes(rows[:, :, order + 1], columns[:, :, order + 1], visibility[order])

    depth, depth_range = render.quantize(frames.depth)
    forward_flow, forward_range = render.quantize(frames.forward_flow)
    backward_flow, backward_range = render.quantize(frames.backward_flow)
    image_positions = geometry.project_points(
        trajectories.positions, scene.camera_positions, camera_rotations, focal_pixels, spec.height, spec.width
    ) / np.array([spec.width, spec.height])  # [n, s, 2]
    float32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    return {
        "metadata": {
            "video_name": f"synthetic_{seed}",
            "width": spec.width,
            "height": spec.height,
            "num_frames": spec.num_frames,
            "num_instances": num_objects,
            "depth_range": np.asarray(depth_range),
            "forward_flow_range": np.asarray(forward_range),
            "backward_flow_range": np.asarray(backward_range),
        },
        "background": BACKGROUNDS[spec.texture],
        "instances": {
            "shape": scene.bodies.shapes[order].astype(np.int64),
            "scale": float32(scene.scale[order]),
            "mass": float32(scene.bodies.mass[order]),
            "friction": float32(scene.bodies.friction[order]),
            "restitution": float32(scene.bodies.restitution[order]),
            "positions": float32(trajectories.positions[order]),
            "quaternions": float32(trajectories.quaternions[order]),
            "velocities": float32(trajectories.velocities[order]),
            "angular_velocities": float32(trajectories.angular_velocities[order]),
            "bboxes_3d": float32(
                geometry.box_corners(scene.bodies.half_extents, trajectories.positions, object_rotations)[order]
            ),
            "image_positions": float32(image_positions[order]),
            "bboxes": bboxes,
            "bbox_frames": bbox_frames,
            "visibility": visibility[order].astype(np.uint16),
        },
        "camera": {
            "focal_length": np.float32(spec.focal_length),
            "sensor_width": np.float32(spec.sensor_width),
            "field_of_view": np.float32(2 * np.arctan(spec.sensor_width / (2 * spec.focal_length))),
            "positions": float32(scene.camera_positions),
            "quaternions": float32(scene.camera_quaternions),
        },
        "video": np.asarray(frames.video),
        "segmentations": segmentation[..., None],
        "depth": np.asarray(depth)[..., None],
        "forward_flow": np.asarray(forward_flow),
        "backward_flow": np.asarray(backward_flow),
    }


def renderer_inputs(
    spec: SceneSpec,
    scene: Scene,
    trajectories: physics.Trajectories,
    object_rotations: np.ndarray,
    camera_rotations: np.ndarray,
    focal_pixels: float,
) -> render.RenderInputs:
    """Packs a scene for the renderer, padding objects to spec.max_objects so it compiles once per spec."""
    num_objects = len(scene.scale)
    padding = spec.max_objects - num_objects

    def pad(x: np.ndarray, fill: float = 0.0) -> jnp.ndarray:
        widths = [(0, padding)] + [(0, 0)] * (x.ndim - 1)
        return jnp.asarray(np.pad(x, widths, constant_values=fill), jnp.float32)

    return render.RenderInputs(
        camera_positions=jnp.asarray(scene.camera_positions, jnp.float32),
        camera_rotations=jnp.asarray(camera_rotations, jnp.float32),
        focal_pixels=jnp.float32(focal_pixels),
        num_objects=jnp.int32(num_objects),
        shapes=jnp.asarray(np.pad(scene.bodies.shapes, (0, padding)), jnp.int32),
        # Padded sizes are 1, not 0: the shading code divides by the size of every gathered object.
        half_extents=pad(scene.bodies.half_extents, 1.0),
        object_positions=pad(trajectories.positions),
        object_rotations=pad(object_rotations),
        colors=pad(scene.colors),
        texture_frequency=pad(scene.texture_frequency),
        floor_colors=jnp.asarray(scene.floor_colors, jnp.float32),
        sky_colors=jnp.asarray(scene.sky_colors, jnp.float32),
        light_direction=jnp.asarray(scene.light_direction, jnp.float32),
        ambient=jnp.float32(scene.ambient),
        dome_radius=jnp.float32(spec.dome_radius),
        dome_check_shade=jnp.float32(DOME_CHECK_SHADES[spec.texture]),
    )


def _mask_statistics(segmentation: np.ndarray, num_ids: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel counts and row/column occupancy of every id, by histograms of (frame, row|column, id) keys.

    Args:
        segmentation: [s, h, w] integer ids in [0, num_ids).
        num_ids: K.

    Returns:
        ([s, K] pixel counts, [s, h, K] whether the id occurs in each row, [s, w, K] in each column).
    """
    frames, height, width = segmentation.shape
    row_keys = np.arange(frames * height).reshape(frames, height, 1) * num_ids + segmentation
    row_counts = np.bincount(row_keys.ravel(), minlength=frames * height * num_ids).reshape(frames, height, num_ids)
    column_keys = (np.arange(frames)[:, None, None] * width + np.arange(width)) * num_ids + segmentation
    column_counts = np.bincount(column_keys.ravel(), minlength=frames * width * num_ids)
    column_counts = column_counts.reshape(frames, width, num_ids)
    return row_counts.sum(axis=1), row_counts > 0, column_counts > 0


def _bounding_boxes(
    rows: np.ndarray, columns: np.ndarray, visibility: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tight normalised boxes of each instance's mask in the frames where it is visible.

    Args:
        rows: [s, h, n] whether instance i occupies row r in frame t.
        columns: [s, w, n] same for columns.
        visibility: [n, s] pixel counts.

    Returns:
        (n arrays [k_i, 4] of [ymin, xmin, ymax, xmax] with ymax = (last row + 1) / h,
         n int32 arrays [k_i] of the frames those boxes belong to).
    """
    height, width = rows.shape[1], columns.shape[1]
    first_row = np.argmax(rows, axis=1)  # [s, n]
    last_row = height - 1 - np.argmax(rows[:, ::-1], axis=1)
    first_column = np.argmax(columns, axis=1)
    last_column = width - 1 - np.argmax(columns[:, ::-1], axis=1)
    boxes = np.stack(
        [first_row / height, first_column / width, (last_row + 1) / height, (last_column + 1) / width], axis=-1
    ).astype(np.float32)  # [s, n, 4]
    frames = [np.flatnonzero(counts > 0).astype(np.int32) for counts in visibility]
    return [boxes[visible, i] for i, visible in enumerate(frames)], frames
