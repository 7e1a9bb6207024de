"""Small rigid-body simulator (jitted jax): gravity, floor bounce and friction, bounding-sphere collisions.

Cubes and cylinders stay upright and only turn about the vertical axis so they rest flat; spheres
roll without slipping while on the floor. Object-object contacts use each object's bounding sphere
(a sequential-impulse step followed by a few position-projection sweeps), which keeps resting
objects apart at the price of small visible gaps between boxy neighbours.
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssync_jax.data.synthetic import geometry

GRAVITY = 9.81  # m/s^2
# Bounces slower than this stop dead; it must exceed one substep's gravity kick (g * dt) or resting
# objects would jitter.
BOUNCE_STOP_SPEED = 0.6
# A rolling sphere loses far less speed than a sliding box.
ROLLING_FRICTION_FACTOR = 0.15
# Position-projection sweeps per substep; stacks settle within a few.
PROJECTION_SWEEPS = 3
# Height above the floor still counted as touching it.
CONTACT_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class RigidBodies:
    """Static properties and initial state of n objects.

    Attributes:
        shapes: [n] int, geometry.SPHERE / CUBE / CYLINDER.
        half_extents: [n, 3] half sizes of the object's box in its own frame.
        mass: [n] kilograms.
        friction: [n] Coulomb coefficient against the floor.
        restitution: [n] bounciness in [0, 1].
        positions: [n, 3] initial centres.
        velocities: [n, 3] initial linear velocities.
        quaternions: [n, 4] initial orientations (w, x, y, z).
        angular_velocities: [n, 3] initial world-frame angular velocities.
    """

    shapes: np.ndarray
    half_extents: np.ndarray
    mass: np.ndarray
    friction: np.ndarray
    restitution: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    quaternions: np.ndarray
    angular_velocities: np.ndarray

    @property
    def collision_radius(self) -> np.ndarray:
        """[n] radius of each object's bounding sphere."""
        corner_radius = np.linalg.norm(self.half_extents, axis=-1)  # [n]
        rim_radius = np.hypot(self.half_extents[:, 0], self.half_extents[:, 2])  # [n]
        return np.select(
            [self.shapes == geometry.SPHERE, self.shapes == geometry.CYLINDER],
            [self.half_extents[:, 0], rim_radius],
            corner_radius,
        )

    @property
    def bottom_offset(self) -> np.ndarray:
        """[n] height of the centre above the floor when resting (objects never tip over)."""
        return self.half_extents[:, 2]


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """Per-frame state of n objects over s frames.

    Attributes:
        positions: [n, s, 3].
        quaternions: [n, s, 4] (w, x, y, z).
        velocities: [n, s, 3].
        angular_velocities: [n, s, 3].
    """

    positions: np.ndarray
    quaternions: np.ndarray
    velocities: np.ndarray
    angular_velocities: np.ndarray


class _State(NamedTuple):
    """Dynamic state of N (padded) objects: [N, 3] positions, velocities, angular velocities, [N, 4] quaternions."""

    position: jax.Array
    velocity: jax.Array
    quaternion: jax.Array
    angular: jax.Array


class _Properties(NamedTuple):
    """Constant per-object properties ([N] each); padded objects have active False."""

    active: jax.Array
    is_sphere: jax.Array
    radius: jax.Array
    collision_radius: jax.Array
    bottom: jax.Array
    inverse_mass: jax.Array
    friction: jax.Array
    restitution: jax.Array


def simulate(
    bodies: RigidBodies, num_frames: int, frame_rate: float, substeps: int, padded_count: int
) -> Trajectories:
    """Integrates the bodies and records their state at every frame (frame 0 = initial state).

    Args:
        bodies: the n objects.
        num_frames: s, number of recorded frames.
        frame_rate: frames per second.
        substeps: integration steps between two frames.
        padded_count: N >= n, the object count the integrator is compiled for (one compile per N).

    Returns:
        Trajectories with [n, s, ...] arrays.
    """
    count = len(bodies.shapes)
    if count > padded_count:
        raise ValueError(f"simulate got {count} bodies but padded_count={padded_count}; raise padded_count.")

    def pad(x: np.ndarray, fill: float) -> jax.Array:
        widths = [(0, padded_count - count)] + [(0, 0)] * (x.ndim - 1)
        return jnp.asarray(np.pad(np.asarray(x, np.float32), widths, constant_values=fill))

    # Padding objects sit far apart below the floor and are masked out of every contact.
    spare = np.arange(count, padded_count)
    far_away = np.stack([1e3 * spare, np.zeros_like(spare), np.full_like(spare, -1e3)], axis=-1)
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (padded_count - count, 1))
    properties = _Properties(
        active=jnp.asarray(np.arange(padded_count) < count),
        is_sphere=jnp.asarray(np.pad(bodies.shapes == geometry.SPHERE, (0, padded_count - count))),
        radius=pad(bodies.half_extents[:, 0], 1.0),
        collision_radius=pad(bodies.collision_radius, 1.0),
        bottom=pad(bodies.bottom_offset, 1.0),
        inverse_mass=pad(1.0 / bodies.mass, 1.0),
        friction=pad(bodies.friction, 0.0),
        restitution=pad(bodies.restitution, 0.0),
    )
    initial = _State(
        position=jnp.asarray(np.concatenate([bodies.positions, far_away]), jnp.float32),
        velocity=pad(bodies.velocities, 0.0),
        quaternion=jnp.asarray(np.concatenate([bodies.quaternions, identity]), jnp.float32),
        angular=pad(bodies.angular_velocities, 0.0),
    )
    dt = 1.0 / (frame_rate * substeps)
    states = _integrate(properties, initial, jnp.float32(dt), num_frames, substeps)
    positions, velocities, quaternions, angular = (np.asarray(x)[:count] for x in states)
    return Trajectories(
        positions=positions, quaternions=quaternions, velocities=velocities, angular_velocities=angular
    )


@functools.partial(jax.jit, static_argnames=("num_frames", "substeps"))
def _integrate(properties: _Properties, initial: _State, dt: jax.Array, num_frames: int, substeps: int) -> _State:
    """Runs the simulation; returns the state of every frame as [N, s, ...] arrays."""

    def substep(state: _State, _) -> tuple[_State, None]:
        velocity = state.velocity.at[:, 2].add(-GRAVITY * dt)
        position = state.position + velocity * dt
        velocity = _collision_impulses(position, velocity, properties)
        for _ in range(PROJECTION_SWEEPS):
            position = _separate(position, properties)
            position, velocity = _floor_contact(position, velocity, properties)
        on_floor = position[:, 2] <= properties.bottom + CONTACT_TOLERANCE  # [N]
        velocity = _floor_friction(velocity, on_floor, properties, dt)
        angular = _spin(state.angular, velocity, on_floor, properties, dt)
        quaternion = _turn(state.quaternion, angular * dt)
        return _State(position, velocity, quaternion, angular), None

    def frame(state: _State, _) -> tuple[_State, _State]:
        state, _ = jax.lax.scan(substep, state, None, length=substeps)
        return state, state

    _, later = jax.lax.scan(frame, initial, None, length=num_frames - 1)  # [s - 1, N, ...] each
    return jax.tree.map(lambda first, rest: jnp.moveaxis(jnp.concatenate([first[None], rest]), 0, 1), initial, later)


def _pair_geometry(position: jax.Array, properties: _Properties) -> tuple[jax.Array, jax.Array]:
    """Unit normals from i to j and overlap depths of all real pairs ([N, N, 3], [N, N]; 0 elsewhere)."""
    delta = position[None, :, :] - position[:, None, :]  # [N, N, 3], j - i
    distance = jnp.sqrt(jnp.sum(delta**2, axis=-1))  # [N, N]
    normal = delta / jnp.maximum(distance, 1e-9)[..., None]
    radius = properties.collision_radius
    overlap = jnp.maximum(radius[:, None] + radius[None, :] - distance, 0.0)
    real_pair = properties.active[:, None] & properties.active[None, :] & ~jnp.eye(len(radius), dtype=bool)
    return normal, jnp.where(real_pair, overlap, 0.0)


def _collision_impulses(position: jax.Array, velocity: jax.Array, properties: _Properties) -> jax.Array:
    """Applies restitution impulses to every overlapping pair that is still approaching."""
    normal, overlap = _pair_geometry(position, properties)
    closing = jnp.sum((velocity[None, :, :] - velocity[:, None, :]) * normal, axis=-1)  # [N, N]
    active = (overlap > 0) & (closing < 0)
    bounce = 1.0 + jnp.minimum(properties.restitution[:, None], properties.restitution[None, :])
    inverse_mass = properties.inverse_mass
    impulse = jnp.where(active, -bounce * closing / (inverse_mass[:, None] + inverse_mass[None, :]), 0.0)
    return velocity - inverse_mass[:, None] * jnp.sum(impulse[..., None] * normal, axis=1)


def _separate(position: jax.Array, properties: _Properties) -> jax.Array:
    """Pushes overlapping pairs apart along their centre line, the lighter object moving more."""
    normal, overlap = _pair_geometry(position, properties)
    inverse_mass = properties.inverse_mass
    share = inverse_mass[:, None] / (inverse_mass[:, None] + inverse_mass[None, :])  # [N, N]
    return position - jnp.sum((overlap * share)[..., None] * normal, axis=1)


def _floor_contact(position: jax.Array, velocity: jax.Array, properties: _Properties) -> tuple[jax.Array, jax.Array]:
    """Lifts objects out of the floor and reflects their downward speed (small bounces stop)."""
    height, vertical = position[:, 2], velocity[:, 2]
    below = (height < properties.bottom) & properties.active  # [N]
    bounced = -properties.restitution * vertical
    bounced = jnp.where(jnp.abs(bounced) < BOUNCE_STOP_SPEED, 0.0, bounced)
    position = position.at[:, 2].set(jnp.where(below, properties.bottom, height))
    velocity = velocity.at[:, 2].set(jnp.where(below & (vertical < 0), bounced, vertical))
    return position, velocity


def _floor_friction(velocity: jax.Array, on_floor: jax.Array, properties: _Properties, dt: jax.Array) -> jax.Array:
    """Coulomb friction: horizontal speed drops by mu * g * dt per step, never reversing."""
    mu = properties.friction * jnp.where(properties.is_sphere, ROLLING_FRICTION_FACTOR, 1.0)  # [N]
    speed = jnp.sqrt(jnp.sum(velocity[:, :2] ** 2, axis=-1))  # [N]
    slowed = jnp.maximum(speed - mu * GRAVITY * dt, 0.0) / jnp.maximum(speed, 1e-9)
    factor = jnp.stack([slowed, slowed, jnp.ones_like(slowed)], axis=-1)  # [N, 3]
    return jnp.where(on_floor[:, None], velocity * factor, velocity)


def _spin(
    angular: jax.Array, velocity: jax.Array, on_floor: jax.Array, properties: _Properties, dt: jax.Array
) -> jax.Array:
    """Rolling spheres spin with their speed; upright shapes keep a yaw spin that friction slows."""
    radius = properties.radius  # [N]
    zeros = jnp.zeros_like(radius)
    rolling = jnp.stack([-velocity[:, 1], velocity[:, 0], zeros], axis=-1) / radius[:, None]
    yaw = angular[:, 2]
    slowed_yaw = jnp.sign(yaw) * jnp.maximum(jnp.abs(yaw) - properties.friction * GRAVITY * dt / radius, 0.0)
    upright = jnp.stack([zeros, zeros, jnp.where(on_floor, slowed_yaw, yaw)], axis=-1)
    sphere_spin = jnp.where(on_floor[:, None], rolling, angular)
    return jnp.where(properties.is_sphere[:, None], sphere_spin, upright)


def _turn(quaternion: jax.Array, rotation_vector: jax.Array) -> jax.Array:
    """Applies a world-frame rotation (axis * angle, [N, 3]) to orientations ([N, 4] w, x, y, z)."""
    angle = jnp.sqrt(jnp.sum(rotation_vector**2, axis=-1, keepdims=True))  # [N, 1]
    # sin(a/2)/a -> 1/2 as a -> 0; the guard keeps zero rotations exact.
    scale = jnp.where(angle > 1e-12, jnp.sin(angle / 2) / jnp.maximum(angle, 1e-12), 0.5)
    sw, (sx, sy, sz) = jnp.cos(angle[:, 0] / 2), (rotation_vector * scale).T
    qw, qx, qy, qz = quaternion.T
    turned = jnp.stack(
        [
            sw * qw - sx * qx - sy * qy - sz * qz,
            sw * qx + sx * qw + sy * qz - sz * qy,
            sw * qy - sx * qz + sy * qw + sz * qx,
            sw * qz + sx * qy - sy * qx + sz * qw,
        ],
        axis=-1,
    )
    return turned / jnp.sqrt(jnp.sum(turned**2, axis=-1, keepdims=True))
