"""Rigid-body geometry in numpy: quaternions (w, x, y, z), look-at cameras, pinhole projection.

Conventions follow Kubric/Blender: world z is up; a camera looks along its local -z with local +y up;
camera quaternions rotate camera-frame vectors into the world frame.
"""

import numpy as np

# Object shapes, numbered as the `instances/shape` ClassLabel.
SPHERE, CUBE, CYLINDER = 0, 1, 2
SHAPE_NAMES = ("sphere", "cube", "cylinder")


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a).

    Args:
        a: [..., 4] quaternions (w, x, y, z).
        b: [..., 4] quaternions (w, x, y, z).

    Returns:
        [..., 4] product.
    """
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quaternion_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """Rotation matrices of unit quaternions.

    Args:
        quaternion: [..., 4] (w, x, y, z).

    Returns:
        [..., 3, 3] matrices R with R @ v rotating v.
    """
    w, x, y, z = np.moveaxis(quaternion, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def look_at_quaternion(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Roll-free camera orientation looking from `position` at `target`.

    The rotation is yaw(phi) * pitch(theta) applied to Blender's default camera (looking down -z):
    pitch about x by theta tilts the view direction to (0, sin t, -cos t), yaw about z turns it.

    Args:
        position: [..., 3] camera centres.
        target: [3] or [..., 3] points to look at.

    Returns:
        [..., 4] world-from-camera quaternions (w, x, y, z).
    """
    forward = target - position  # [..., 3]
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    theta = np.arccos(np.clip(-forward[..., 2], -1.0, 1.0))
    phi = np.arctan2(-forward[..., 0], forward[..., 1])
    zeros = np.zeros_like(theta)
    yaw = np.stack([np.cos(phi / 2), zeros, zeros, np.sin(phi / 2)], axis=-1)
    pitch = np.stack([np.cos(theta / 2), np.sin(theta / 2), zeros, zeros], axis=-1)
    return quaternion_multiply(yaw, pitch)


def focal_length_pixels(focal_length: float, sensor_width: float, width: int) -> float:
    """Focal length in pixels for a sensor fitted to the image width."""
    return focal_length / sensor_width * width


def project_points(
    points: np.ndarray,
    camera_positions: np.ndarray,
    camera_rotations: np.ndarray,
    focal_pixels: float,
    height: int,
    width: int,
) -> np.ndarray:
    """Pinhole projection to continuous image coordinates (x = column, y = row; pixel i covers [i, i+1)).

    Args:
        points: [..., F, 3] world points.
        camera_positions: [F, 3] camera centres.
        camera_rotations: [F, 3, 3] world-from-camera rotations.
        focal_pixels: focal length in pixels.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        [..., F, 2] (x, y) image coordinates in pixels.
    """
    local = np.einsum("fji,...fj->...fi", camera_rotations, points - camera_positions)  # [..., F, 3]
    depth = -local[..., 2]
    x = focal_pixels * local[..., 0] / depth + width / 2
    y = -focal_pixels * local[..., 1] / depth + height / 2
    return np.stack([x, y], axis=-1)


def box_corners(
    half_extents: np.ndarray, positions: np.ndarray, rotations: np.ndarray
) -> np.ndarray:
    """World-space corners of oriented boxes.

    Args:
        half_extents: [N, 3] box half sizes in the object frame.
        positions: [N, F, 3] box centres.
        rotations: [N, F, 3, 3] world-from-object rotations.

    Returns:
        [N, F, 8, 3] corners, ordered as itertools.product([-1, 1], repeat=3) over (x, y, z).
    """
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    local = signs[None] * half_extents[:, None, :]  # [N, 8, 3]
    world = np.einsum("nfij,nkj->nfki", rotations, local)  # [N, F, 8, 3]
    return world + positions[:, :, None, :]
