"""Scene specification and random scene sampling (objects, materials, lights, camera path)."""

import colorsys
import dataclasses

import numpy as np

from ssync_jax.data.synthetic import geometry
from ssync_jax.data.synthetic.physics import RigidBodies

CAMERA_MOTIONS = ("static", "linear")
# "checker": two-tone checks on objects, floor and sky dome (MOVi-C-like textures); "plain": one colour per
# object, a one-colour floor and a one-colour sky without checks (MOVi-A-like; shading still varies).
TEXTURES = ("checker", "plain")
# Attempts to find a free spot for a new object before stacking it above the others.
PLACEMENT_ATTEMPTS = 100


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """What kind of videos to generate; every field but the size has a MOVi-like default.

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        num_frames: frames per video.
        min_objects: fewest objects in a scene.
        max_objects: most objects in a scene (also the padded size the renderer compiles for).
        camera_motion: "static" (MOVi-C-like) or "linear" (MOVi-E-like, constant-velocity path).
        texture: "checker" (MOVi-C-like two-tone checks everywhere) or "plain" (MOVi-A-like uniform
            colours: one albedo per object, a plain floor and a plain sky).
        frame_rate: frames per second of simulated time.
        physics_substeps: integration steps per frame.
        focal_length: lens focal length in mm (Kubric's default camera).
        sensor_width: sensor width in mm.
        camera_distance: (min, max) distance of the camera from the scene centre.
        camera_elevation_degrees: (min, max) elevation of the camera above the floor plane.
        camera_travel: (min, max) length of the linear camera path over the whole video.
        object_scale: (min, max) half height of an object.
        spawn_extent: objects start with |x|, |y| below this.
        spawn_height: objects start with their bottom at most this far above the floor.
        dome_radius: radius of the background half-sphere around the scene.
    """

    height: int
    width: int
    num_frames: int = 24
    min_objects: int = 3
    max_objects: int = 10
    camera_motion: str = "static"
    texture: str = "checker"
    frame_rate: float = 12.0
    physics_substeps: int = 4
    focal_length: float = 35.0
    sensor_width: float = 32.0
    camera_distance: tuple[float, float] = (8.0, 12.0)
    camera_elevation_degrees: tuple[float, float] = (15.0, 60.0)
    camera_travel: tuple[float, float] = (1.0, 4.0)
    object_scale: tuple[float, float] = (0.4, 0.9)
    spawn_extent: float = 4.0
    spawn_height: float = 3.0
    dome_radius: float = 40.0

    def __post_init__(self):
        if self.height < 1 or self.width < 1 or self.num_frames < 1:
            raise ValueError(
                f"SceneSpec needs positive height, width and num_frames; got {self.height}x{self.width}x"
                f"{self.num_frames}."
            )
        if not (0 <= self.min_objects <= self.max_objects <= 254 and self.max_objects >= 1):
            raise ValueError(
                f"SceneSpec needs 0 <= min_objects <= max_objects, 1 <= max_objects <= 254 (uint8 segmentation "
                f"ids); got "
                f"min_objects={self.min_objects}, max_objects={self.max_objects}."
            )
        if self.camera_motion not in CAMERA_MOTIONS:
            raise ValueError(f"SceneSpec.camera_motion must be one of {CAMERA_MOTIONS}; got {self.camera_motion!r}.")
        if self.texture not in TEXTURES:
            raise ValueError(f"SceneSpec.texture must be one of {TEXTURES}; got {self.texture!r}.")
        if self.camera_distance[1] >= self.dome_radius:
            raise ValueError(
                f"SceneSpec.camera_distance {self.camera_distance} must stay inside dome_radius {self.dome_radius}."
            )


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything random about one video.

    Attributes:
        bodies: the n objects' physics properties and initial state.
        scale: [n] half heights of the objects.
        colors: [n, 2, 3] linear RGB of the two texture tones of each object (equal when plain).
        texture_frequency: [n] checker cells per unit length in each object's frame.
        camera_positions: [s, 3] camera centres.
        camera_quaternions: [s, 4] world-from-camera orientations.
        floor_colors: [2, 3] checker tones of the floor (equal when plain).
        sky_colors: [2, 3] horizon and zenith colours of the dome (equal when plain).
        light_direction: [3] unit vector towards the sun.
        ambient: fraction of light that reaches surfaces facing away from the sun.
    """

    bodies: RigidBodies
    scale: np.ndarray
    colors: np.ndarray
    texture_frequency: np.ndarray
    camera_positions: np.ndarray
    camera_quaternions: np.ndarray
    floor_colors: np.ndarray
    sky_colors: np.ndarray
    light_direction: np.ndarray
    ambient: float


def sample_scene(spec: SceneSpec, rng: np.random.Generator) -> Scene:
    """Draws one scene.

    Args:
        spec: the kind of scene.
        rng: source of all randomness.

    Returns:
        The sampled Scene.
    """
    num_objects = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    shapes = rng.integers(0, len(geometry.SHAPE_NAMES), size=num_objects)
    scale = rng.uniform(*spec.object_scale, size=num_objects)
    half_extents = np.repeat(scale[:, None], 3, axis=1)  # [n, 3]
    unit_volume = np.select([shapes == geometry.SPHERE, shapes == geometry.CUBE], [4 / 3 * np.pi, 8.0], 2 * np.pi)
    bodies = RigidBodies(
        shapes=shapes,
        half_extents=half_extents,
        mass=unit_volume * scale**3 * rng.uniform(0.5, 2.0, size=num_objects),
        friction=rng.uniform(0.3, 0.8, size=num_objects),
        restitution=rng.uniform(0.1, 0.6, size=num_objects),
        positions=np.zeros((num_objects, 3)),
        velocities=np.zeros((num_objects, 3)),
        quaternions=_initial_orientations(shapes, rng),
        angular_velocities=np.zeros((num_objects, 3)),
    )
    positions = _place_without_overlap(bodies.collision_radius, bodies.bottom_offset, spec, rng)
    velocities = np.zeros((num_objects, 3))
    # Like Kubric's MOVi: random throws biased towards the centre so objects meet.
    velocities[:, :2] = rng.uniform(-3.0, 3.0, size=(num_objects, 2)) - 0.5 * positions[:, :2]
    angular = np.zeros((num_objects, 3))
    angular[:, 2] = np.where(shapes == geometry.SPHERE, 0.0, rng.uniform(-2.0, 2.0, size=num_objects))
    bodies = dataclasses.replace(bodies, positions=positions, velocities=velocities, angular_velocities=angular)

    hue = rng.uniform(0.0, 1.0, size=num_objects)
    saturation = rng.uniform(0.4, 0.9, size=num_objects)
    value = rng.uniform(0.5, 1.0, size=num_objects)
    base = np.array([colorsys.hsv_to_rgb(h, s, v) for h, s, v in zip(hue, saturation, value)]).reshape(-1, 3)
    colors = np.stack([base, base * rng.uniform(0.35, 0.7, size=(num_objects, 1))], axis=1)  # [n, 2, 3]
    cells = rng.integers(1, 4, size=num_objects)
    camera_positions = _camera_path(spec, rng)
    floor_tone = rng.uniform(0.3, 0.6)
    floor_tint = rng.uniform(0.85, 1.15, size=3)
    sky_hue = rng.uniform(0.5, 0.7)
    light_azimuth = rng.uniform(0.0, 2 * np.pi)
    light_elevation = np.deg2rad(rng.uniform(35.0, 75.0))
    floor_colors = np.clip(np.stack([floor_tone * floor_tint, 0.7 * floor_tone * floor_tint]), 0.0, 1.0)
    sky_colors = np.array([colorsys.hsv_to_rgb(sky_hue, 0.15, 0.95), colorsys.hsv_to_rgb(sky_hue, 0.6, 0.8)])
    if spec.texture == "plain":
        # The same draws as checker scenes (so both textures of a seed share geometry), each pair one tone.
        colors = colors[:, :1].repeat(2, axis=1)
        floor_colors = floor_colors[:1].repeat(2, axis=0)
        sky_colors = np.array([colorsys.hsv_to_rgb(sky_hue, 0.35, 0.9)]).repeat(2, axis=0)
    return Scene(
        bodies=bodies,
        scale=scale,
        colors=colors,
        texture_frequency=cells / scale,
        camera_positions=camera_positions,
        camera_quaternions=geometry.look_at_quaternion(camera_positions, np.zeros(3)),
        floor_colors=floor_colors,
        sky_colors=sky_colors,
        light_direction=np.array(
            [
                np.cos(light_elevation) * np.cos(light_azimuth),
                np.cos(light_elevation) * np.sin(light_azimuth),
                np.sin(light_elevation),
            ]
        ),
        ambient=float(rng.uniform(0.3, 0.45)),
    )


def _initial_orientations(shapes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random orientations for spheres, random yaw for the upright shapes ([n, 4])."""
    free = rng.normal(size=(len(shapes), 4))
    free /= np.linalg.norm(free, axis=-1, keepdims=True)
    yaw = rng.uniform(0.0, 2 * np.pi, size=len(shapes))
    upright = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=-1)
    return np.where((shapes == geometry.SPHERE)[:, None], free, upright)


def _place_without_overlap(
    radius: np.ndarray, bottom: np.ndarray, spec: SceneSpec, rng: np.random.Generator
) -> np.ndarray:
    """Initial centres whose bounding spheres are disjoint ([n, 3]).

    Each object tries random spots in the spawn box; if the box is too crowded it goes on top of
    the highest object placed so far (it then falls onto the others).
    """
    placed = np.zeros((0, 3))
    for object_radius, object_bottom in zip(radius, bottom):
        candidates = np.stack(
            [
                rng.uniform(-spec.spawn_extent, spec.spawn_extent, size=PLACEMENT_ATTEMPTS),
                rng.uniform(-spec.spawn_extent, spec.spawn_extent, size=PLACEMENT_ATTEMPTS),
                object_bottom + rng.uniform(0.0, spec.spawn_height, size=PLACEMENT_ATTEMPTS),
            ],
            axis=-1,
        )  # [A, 3]
        gaps = np.linalg.norm(candidates[:, None] - placed[None], axis=-1) - object_radius - radius[: len(placed)]
        free = np.all(gaps > 0, axis=1)  # [A]
        if free.any():
            spot = candidates[np.argmax(free)]
        else:
            top = np.max(placed[:, 2] + radius[: len(placed)])
            spot = np.array([candidates[0, 0], candidates[0, 1], top + object_radius])
        placed = np.concatenate([placed, spot[None]], axis=0)
    return placed


def _camera_path(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """Camera centres for every frame ([s, 3]): fixed, or a straight constant-speed path."""
    distance = rng.uniform(*spec.camera_distance)
    elevation = np.deg2rad(rng.uniform(*spec.camera_elevation_degrees))
    azimuth = rng.uniform(0.0, 2 * np.pi)
    start = distance * np.array(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
    )
    if spec.camera_motion == "static":
        return np.repeat(start[None], spec.num_frames, axis=0)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    # Only ever move upwards when moving down would approach the floor, keeping the view from above.
    travel = rng.uniform(*spec.camera_travel)
    if start[2] + travel * direction[2] < start[2] / 2:
        direction[2] = -direction[2]
    progress = np.linspace(0.0, 1.0, spec.num_frames)[:, None]  # [s, 1]
    return start[None] + progress * travel * direction[None]
