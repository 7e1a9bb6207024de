"""Jitted ray caster: colour, instance ids, depth and exact optical flow of a whole video at once.

Every pixel of every frame casts one ray. The background is a floor plane (z = 0) inside a dome
(half-sphere of radius R around the origin), so every ray ends at a finite depth. Objects are
intersected analytically in their own frame (shapes.py), one object per loop iteration (`lax.switch`
runs only the branch of that object's shape); the nearest hit wins and keeps its hit point in its
object's frame. Flow carries that point with its object's rigid motion (the background is static)
to the neighbouring frame and projects it with that frame's camera.

Arrays are component-first ([3, F, H, W]) and per-pixel object parameters are picked by select
chains (`_per_pixel`): both keep XLA:CPU's fused loops vectorised and avoid materialised gathers.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssync_jax.data.synthetic.shapes import INTERSECTORS, dot, rotate, rotate_inverse, surface_normal

# Checker cells across the dome radius: the static background is textured in every direction.
DOME_CELLS = 8


class RenderInputs(NamedTuple):
    """A scene in renderer form; objects padded to a fixed count N, only the first num_objects used.

    Attributes:
        camera_positions: [F, 3] camera centres.
        camera_rotations: [F, 3, 3] world-from-camera rotations (camera looks along its -z).
        focal_pixels: [] focal length in pixels.
        num_objects: [] int32, number of real objects.
        shapes: [N] int32 geometry.SPHERE / CUBE / CYLINDER.
        half_extents: [N, 3] object half sizes in the object frame.
        object_positions: [N, F, 3] object centres.
        object_rotations: [N, F, 3, 3] world-from-object rotations.
        colors: [N, 2, 3] linear RGB checker tones.
        texture_frequency: [N] checker cells per unit length.
        floor_colors: [2, 3] checker tones of the floor (unit tiles).
        sky_colors: [2, 3] horizon and zenith colours of the dome.
        light_direction: [3] unit vector towards the sun.
        ambient: [] light fraction on surfaces facing away from the sun.
        dome_radius: [] radius of the background dome.
        dome_check_shade: [] brightness of the dome's dark checks relative to its light ones (1: no checks).
    """

    camera_positions: jax.Array
    camera_rotations: jax.Array
    focal_pixels: jax.Array
    num_objects: jax.Array
    shapes: jax.Array
    half_extents: jax.Array
    object_positions: jax.Array
    object_rotations: jax.Array
    colors: jax.Array
    texture_frequency: jax.Array
    floor_colors: jax.Array
    sky_colors: jax.Array
    light_direction: jax.Array
    ambient: jax.Array
    dome_radius: jax.Array
    dome_check_shade: jax.Array


class RenderOutputs(NamedTuple):
    """Per-pixel results (F frames of H x W).

    Attributes:
        video: [F, H, W, 3] uint8 colours (gamma 2).
        segmentation: [F, H, W] int32; 0 background, k + 1 for input object k.
        depth: [F, H, W] float32 distance from the camera centre along the ray.
        forward_flow: [F, H, W, 2] (d_row, d_col) pixels to frame t + 1; zero in the last frame.
        backward_flow: [F, H, W, 2] (d_row, d_col) pixels to frame t - 1; zero in the first frame.
    """

    video: jax.Array
    segmentation: jax.Array
    depth: jax.Array
    forward_flow: jax.Array
    backward_flow: jax.Array


def camera_rays(camera_rotations: jax.Array, focal_pixels: jax.Array, height: int, width: int) -> jax.Array:
    """Unit world-space directions through every pixel centre.

    Args:
        camera_rotations: [3, 3, F] world-from-camera rotations.
        focal_pixels: [] focal length in pixels.
        height: H.
        width: W.

    Returns:
        [3, F, H, W] ray directions.
    """
    x = (jnp.arange(width) + 0.5 - width / 2) / focal_pixels  # [W]
    y = -(jnp.arange(height) + 0.5 - height / 2) / focal_pixels  # [H]
    local = jnp.stack(jnp.broadcast_arrays(x[None, :], y[:, None], -jnp.ones((1, 1))))  # [3, H, W]
    local = local / jnp.sqrt(dot(local, local))
    return rotate(camera_rotations[..., None, None], local[:, None])  # [3, F, H, W]


def _background_distance(origin: jax.Array, rays: jax.Array, dome_radius: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Distances to the floor-or-dome background and whether the floor is hit ([F, H, W] each)."""
    t_floor = jnp.where(rays[2] < 0, -origin[2] / jnp.minimum(rays[2], -1e-12), jnp.inf)
    b = dot(origin, rays)
    c = dot(origin, origin) - dome_radius**2  # < 0: the camera is inside the dome
    t_dome = -b + jnp.sqrt(b * b - c)
    return jnp.minimum(t_floor, t_dome), t_floor < t_dome


def _per_pixel(table: jax.Array, ids: jax.Array) -> jax.Array:
    """table[..., ids[f, h, w], f] for every pixel.

    A chain of selects over the K (few) ids: XLA:CPU fuses it into whatever consumes the result,
    where a gather's output would be materialised (several times slower here).

    Args:
        table: [..., K, F] per-id, per-frame values (F may be 1 for per-id constants).
        ids: [F, H, W] ints in [0, K).

    Returns:
        [..., F, H, W] values.
    """
    result = table[..., 0, :, None, None]
    for k in range(1, table.shape[-2]):
        result = jnp.where(ids == k, table[..., k, :, None, None], result)
    return jnp.broadcast_to(result, result.shape[:-3] + ids.shape)


def _flow_to(
    points: jax.Array,
    target_frames: jax.Array,
    ids: jax.Array,
    cameras: tuple[jax.Array, jax.Array],
    poses: tuple[jax.Array, jax.Array],
    focal_pixels: jax.Array,
) -> jax.Array:
    """(d_row, d_col) from each pixel centre to its surface point's image in the target frame.

    Args:
        points: [3, F, H, W] visible points in their object's frame (world frame for id 0).
        target_frames: [F] frame index to carry each frame's points to.
        ids: [F, H, W] int32 segmentation (0 = static background).
        cameras: ([3, F] positions, [3, 3, F] world-from-camera rotations).
        poses: ([3, 3, N + 1, F] rotations, [3, N + 1, F] positions), index 0 the static world.
        focal_pixels: [] focal length in pixels.

    Returns:
        [2, F, H, W] flow in pixels.
    """
    (camera_positions, camera_rotations), (rotations, positions) = cameras, poses
    _, height, width = ids.shape
    # Object frame at the target time -> target camera frame, composed per (object, frame) first.
    target_camera = camera_rotations[:, :, None, target_frames]  # [3, 3, 1, F]
    to_camera = jnp.einsum("jikf,jlkf->ilkf", target_camera, rotations[..., target_frames])  # [3, 3, N + 1, F]
    offset = rotate_inverse(target_camera, positions[..., target_frames] - camera_positions[:, None, target_frames])
    camera = rotate(_per_pixel(to_camera, ids), points) + _per_pixel(offset, ids)  # [3, F, H, W]
    depth = jnp.maximum(-camera[2], 1e-6)
    column = focal_pixels * camera[0] / depth + width / 2 - 0.5
    row = -focal_pixels * camera[1] / depth + height / 2 - 0.5
    return jnp.stack([row - jnp.arange(height)[:, None], column - jnp.arange(width)])


def _with_background_row(table: jax.Array, fill: float) -> jax.Array:
    """Prepends the background's entry (id 0) to a per-object table on its last axis ([..., N] -> [..., N + 1])."""
    return jnp.concatenate([jnp.full(table.shape[:-1] + (1,), fill, table.dtype), table], axis=-1)


def _even_cell_sum(coordinates: jax.Array) -> jax.Array:
    """Checkerboard: whether the integer cells of the C coordinates ([C, ...]) sum to an even number ([...]).

    Integer parity, because XLA:CPU's float remainder is a slow scalar libm call.
    """
    return (jnp.floor(coordinates).astype(jnp.int32).sum(axis=0) & 1) == 0


def _shade(
    points: jax.Array,
    world_points: jax.Array,
    ids: jax.Array,
    on_floor: jax.Array,
    light: jax.Array,
    inputs: RenderInputs,
) -> jax.Array:
    """Lambertian + ambient colours of the visible points ([3, F, H, W] linear RGB).

    Args:
        points: [3, F, H, W] visible points in their object's frame.
        world_points: [3, F, H, W] the same points in the world.
        ids: [F, H, W] segmentation (0 background).
        on_floor: [F, H, W] whether the background ray ends on the floor (else on the dome).
        light: [3, F, H, W] direction to the sun in each pixel's object frame.
        inputs: the scene.

    Returns:
        [3, F, H, W] colours.
    """
    half_extents = _per_pixel(_with_background_row(inputs.half_extents.T, 1.0)[..., None], ids)  # [3, F, H, W]
    shape = _per_pixel(_with_background_row(inputs.shapes, 0)[..., None], ids)  # [F, H, W]
    normal = surface_normal(points, half_extents, shape)  # [3, F, H, W]
    # The quarter-cell offset keeps checker edges off the faces of cubes sized in whole cells.
    frequency = _per_pixel(_with_background_row(inputs.texture_frequency, 1.0)[..., None], ids)  # [F, H, W]
    first_tone = _even_cell_sum(points * frequency + 0.25)[None]
    tones = _with_background_row(jnp.moveaxis(inputs.colors, 0, -1), 0.0)  # [2, 3, N + 1]
    colors = _per_pixel(tones[..., None], ids)  # [2, 3, F, H, W]
    albedo = jnp.where(first_tone, colors[0], colors[1])
    objects = albedo * (inputs.ambient + (1 - inputs.ambient) * jnp.maximum(dot(normal, light), 0.0))

    floor_light = inputs.ambient + (1 - inputs.ambient) * jnp.maximum(inputs.light_direction[2], 0.0)
    floor_tone = _even_cell_sum(world_points[:2])[None]
    floor_colors = inputs.floor_colors[:, :, None, None, None]  # [2, 3, 1, 1, 1]
    floor = jnp.where(floor_tone, floor_colors[0], floor_colors[1]) * floor_light

    elevation = jnp.clip(world_points[2] / inputs.dome_radius, 0.0, 1.0)[None]
    horizon, zenith = inputs.sky_colors[0, :, None, None, None], inputs.sky_colors[1, :, None, None, None]
    dome_tone = _even_cell_sum(world_points * (DOME_CELLS / inputs.dome_radius))
    sky = ((1 - elevation) * horizon + elevation * zenith) * jnp.where(dome_tone, 1.0, inputs.dome_check_shade)
    return jnp.where(ids > 0, objects, jnp.where(on_floor, floor, sky))


class _Hits(NamedTuple):
    """What each pixel's ray hits first ([F, H, W] unless noted).

    Attributes:
        depth: distance from the camera centre.
        ids: 0 for the background, k + 1 for input object k.
        points: [3, F, H, W] hit point in its object's frame (the world frame for the background).
        world_points: [3, F, H, W] hit point in the world.
        on_floor: whether a background ray ends on the floor (else on the dome).
    """

    depth: jax.Array
    ids: jax.Array
    points: jax.Array
    world_points: jax.Array
    on_floor: jax.Array


def _poses(inputs: RenderInputs) -> tuple[jax.Array, jax.Array]:
    """Component-first poses with the static world frame as pose 0 (the background's).

    Returns:
        ([3, 3, N + 1, F] world-from-object rotations, [3, N + 1, F] positions).
    """
    num_frames = inputs.camera_positions.shape[0]
    world_rotation = jnp.broadcast_to(jnp.eye(3)[:, :, None, None], (3, 3, 1, num_frames))
    rotations = jnp.concatenate([world_rotation, jnp.moveaxis(inputs.object_rotations, (0, 1), (2, 3))], axis=2)
    positions = jnp.concatenate([jnp.zeros((3, 1, num_frames)), jnp.moveaxis(inputs.object_positions, -1, 0)], axis=1)
    return rotations, positions


@functools.partial(jax.jit, static_argnames=("height", "width"))
def _cast_rays(inputs: RenderInputs, height: int, width: int) -> _Hits:
    """Nearest hit of every pixel's ray: background first, then one object per loop iteration."""
    rotations, positions = _poses(inputs)
    camera_rotations = jnp.moveaxis(inputs.camera_rotations, 0, -1)  # [3, 3, F]
    rays = camera_rays(camera_rotations, inputs.focal_pixels, height, width)  # [3, F, H, W]
    origin = inputs.camera_positions.T[:, :, None, None]  # [3, F, 1, 1]
    background_depth, on_floor = _background_distance(origin, rays, inputs.dome_radius)  # [F, H, W]

    def nearest_hit(k, carry):
        depth, ids, points = carry
        rotation = rotations[:, :, k + 1, :, None, None]  # [3, 3, F, 1, 1]
        local_origin = rotate_inverse(rotation, origin - positions[:, k + 1, :, None, None])  # [3, F, 1, 1]
        local_rays = rotate_inverse(rotation, rays)  # [3, F, H, W]
        t = jax.lax.switch(inputs.shapes[k], INTERSECTORS, local_origin, local_rays, inputs.half_extents[k])
        closer = t < depth
        points = jnp.where(closer, local_origin + t * local_rays, points)
        return jnp.where(closer, t, depth), jnp.where(closer, k + 1, ids), points

    background = (background_depth, jnp.zeros(background_depth.shape, jnp.int32), origin + background_depth * rays)
    depth, ids, points = jax.lax.fori_loop(0, inputs.num_objects, nearest_hit, background)
    return _Hits(depth, ids, points, origin + depth * rays, on_floor)


@jax.jit
def _colors(inputs: RenderInputs, hits: _Hits) -> jax.Array:
    """[F, H, W, 3] uint8 frames."""
    rotations, _ = _poses(inputs)
    # Shading happens in each object's frame, so no per-pixel rotation has to be materialised.
    light = rotate_inverse(rotations, inputs.light_direction[:, None, None, None])  # [3, N + 1, F]
    color = _shade(hits.points, hits.world_points, hits.ids, hits.on_floor, _per_pixel(light, hits.ids), inputs)
    # Display gamma 2 (not 2.2): a square root is vectorised on XLA:CPU, a general power is not.
    video = jnp.round(jnp.sqrt(jnp.clip(color, 0.0, 1.0)) * 255).astype(jnp.uint8)  # [3, F, H, W]
    return jnp.moveaxis(video, 0, -1)


@jax.jit
def _flows(inputs: RenderInputs, hits: _Hits) -> tuple[jax.Array, jax.Array]:
    """[F, H, W, 2] forward and backward flow, zero where the neighbour frame does not exist."""
    num_frames = inputs.camera_positions.shape[0]
    frames = jnp.arange(num_frames)
    cameras = (inputs.camera_positions.T, jnp.moveaxis(inputs.camera_rotations, 0, -1))
    poses = _poses(inputs)
    forward = _flow_to(hits.points, jnp.minimum(frames + 1, num_frames - 1), hits.ids, cameras, poses, inputs.focal_pixels)
    backward = _flow_to(hits.points, jnp.maximum(frames - 1, 0), hits.ids, cameras, poses, inputs.focal_pixels)
    return (
        jnp.moveaxis(jnp.where(frames[:, None, None] == num_frames - 1, 0.0, forward), 0, -1),
        jnp.moveaxis(jnp.where(frames[:, None, None] == 0, 0.0, backward), 0, -1),
    )


def render_video(inputs: RenderInputs, height: int, width: int) -> RenderOutputs:
    """Renders all frames of a scene.

    Three separately jitted stages: compiled as one program, XLA:CPU picks array layouts that
    suit one consumer of the ray hits and slows the others (measured in docs/RESULTS.md §4).

    Args:
        inputs: the scene (F frames, N padded objects).
        height: H.
        width: W.

    Returns:
        RenderOutputs with [F, H, W, ...] arrays.
    """
    hits = _cast_rays(inputs, height=height, width=width)
    forward, backward = _flows(inputs, hits)
    return RenderOutputs(
        video=_colors(inputs, hits), segmentation=hits.ids, depth=hits.depth, forward_flow=forward, backward_flow=backward
    )


@jax.jit
def quantize(values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Kubric's uint16 encoding q = round((x - min) / (max - min) * 65535) with per-array range.

    Args:
        values: float array.

    Returns:
        (uint16 array of the same shape, [2] float32 (min, max)); a constant array encodes as 0.
    """
    low, high = jnp.min(values), jnp.max(values)
    span = jnp.where(high > low, high - low, 1.0)
    encoded = jnp.round((values - low) / span * 65535).astype(jnp.uint16)
    return encoded, jnp.stack([low, high]).astype(jnp.float32)
