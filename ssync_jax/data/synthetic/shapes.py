"""Ray-primitive intersections and surface normals in an object's own frame (jax).

Vectors are component-first, `[3, ...]`, and rotations `[3, 3, ...]`: each formula then is a handful
of same-shaped elementwise ops, which XLA:CPU fuses into one vectorised loop (a trailing size-3
axis is several times slower).
"""

import jax
import jax.numpy as jnp

from ssync_jax.data.synthetic import geometry

# Hits closer than this along a ray are ignored (the camera is never inside an object).
MIN_HIT_DISTANCE = 1e-4


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Dot product of [3, ...] vectors -> [...]."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def rotate(rotation: jax.Array, vector: jax.Array) -> jax.Array:
    """R @ v for [3, 3, ...] rotations and [3, ...] vectors -> [3, ...]."""
    return jnp.stack([sum(rotation[i, j] * vector[j] for j in range(3)) for i in range(3)])


def rotate_inverse(rotation: jax.Array, vector: jax.Array) -> jax.Array:
    """R^T @ v for [3, 3, ...] rotations and [3, ...] vectors -> [3, ...]."""
    return jnp.stack([sum(rotation[j, i] * vector[j] for j in range(3)) for i in range(3)])


def _safe_reciprocal(x: jax.Array) -> jax.Array:
    return 1.0 / jnp.where(jnp.abs(x) < 1e-12, 1e-12, x)


def intersect_sphere(origin: jax.Array, direction: jax.Array, half_extents: jax.Array) -> jax.Array:
    """Distance to the sphere of radius half_extents[0] around the origin (inf on a miss).

    Args:
        origin: [3, ...] ray origins in the object frame (broadcastable against direction).
        direction: [3, ...] unit ray directions in the object frame.
        half_extents: [3] object half sizes.

    Returns:
        [...] distance to the first hit.
    """
    b = dot(origin, direction)
    c = dot(origin, origin) - half_extents[0] ** 2
    discriminant = b * b - c
    t = -b - jnp.sqrt(jnp.maximum(discriminant, 0.0))
    return jnp.where((discriminant > 0) & (t > MIN_HIT_DISTANCE), t, jnp.inf)


def intersect_box(origin: jax.Array, direction: jax.Array, half_extents: jax.Array) -> jax.Array:
    """Distance to the box [-half_extents, half_extents] by the slab test (inf on a miss).

    Args and Returns as intersect_sphere.
    """
    t_near, t_far = -jnp.inf, jnp.inf
    for axis in range(3):
        inverse = _safe_reciprocal(direction[axis])
        t_low = (-half_extents[axis] - origin[axis]) * inverse
        t_high = (half_extents[axis] - origin[axis]) * inverse
        t_near = jnp.maximum(t_near, jnp.minimum(t_low, t_high))
        t_far = jnp.minimum(t_far, jnp.maximum(t_low, t_high))
    return jnp.where((t_near <= t_far) & (t_near > MIN_HIT_DISTANCE), t_near, jnp.inf)


def intersect_cylinder(origin: jax.Array, direction: jax.Array, half_extents: jax.Array) -> jax.Array:
    """Distance to the upright cylinder of radius half_extents[0] and |z| <= half_extents[2] (inf on a miss).

    Args and Returns as intersect_sphere.
    """
    radius, half_height = half_extents[0], half_extents[2]
    a = direction[0] ** 2 + direction[1] ** 2
    b = origin[0] * direction[0] + origin[1] * direction[1]
    c = origin[0] ** 2 + origin[1] ** 2 - radius**2
    discriminant = b * b - a * c
    t_side = (-b - jnp.sqrt(jnp.maximum(discriminant, 0.0))) / jnp.maximum(a, 1e-12)
    side_hit = (discriminant > 0) & (t_side > MIN_HIT_DISTANCE)
    side_hit &= jnp.abs(origin[2] + t_side * direction[2]) <= half_height
    # A ray can only enter through the cap facing it: the top one when it travels downwards.
    cap_height = jnp.where(direction[2] < 0, half_height, -half_height)
    t_cap = (cap_height - origin[2]) * _safe_reciprocal(direction[2])
    cap_x = origin[0] + t_cap * direction[0]
    cap_y = origin[1] + t_cap * direction[1]
    cap_hit = (t_cap > MIN_HIT_DISTANCE) & (cap_x**2 + cap_y**2 <= radius**2)
    return jnp.minimum(jnp.where(side_hit, t_side, jnp.inf), jnp.where(cap_hit, t_cap, jnp.inf))


# Indexed by shape id (geometry.SPHERE, CUBE, CYLINDER).
INTERSECTORS = (intersect_sphere, intersect_box, intersect_cylinder)


def surface_normal(point: jax.Array, half_extents: jax.Array, shape: jax.Array) -> jax.Array:
    """Outward unit normal at a surface point, in the object frame.

    Args:
        point: [3, ...] surface points in the object frame.
        half_extents: [3, ...] object half sizes.
        shape: [...] shape ids.

    Returns:
        [3, ...] normals.
    """
    sphere = point / jnp.sqrt(dot(point, point))
    # Boxy shapes: the face whose constraint is tightest (relative coordinate closest to 1).
    relative = jnp.abs(point) / half_extents  # [3, ...]
    on_x = (relative[0] >= relative[1]) & (relative[0] >= relative[2])
    on_y = ~on_x & (relative[1] >= relative[2])
    face = jnp.stack([on_x, on_y, ~on_x & ~on_y])
    box = jnp.where(face, jnp.sign(point), 0.0)
    radial = jnp.sqrt(point[0] ** 2 + point[1] ** 2)
    on_cap = relative[2] >= radial / half_extents[0]
    side_scale = 1.0 / jnp.maximum(radial, 1e-9)
    cylinder = jnp.stack(
        [
            jnp.where(on_cap, 0.0, point[0] * side_scale),
            jnp.where(on_cap, 0.0, point[1] * side_scale),
            jnp.where(on_cap, jnp.sign(point[2]), 0.0),
        ]
    )
    return jnp.where(shape == geometry.SPHERE, sphere, jnp.where(shape == geometry.CUBE, box, cylinder))
