"""The TFDS feature spec of our generated videos: Kubric MOVi's names, dtypes and feature types.

Readers written for MOVi (video, segmentations, depth, flow, instances, camera) work unchanged on
our data. Real MOVi additionally has `normal`, `object_coordinates`, `events` and
`instances/{category,asset_id}`; we have `instances/shape` instead of `category`.
"""

import numpy as np

from ssync_jax import logs

logs.import_tensorflow_quietly()  # Its C++ start-up lines stay off stderr (--log_libraries shows them).
import tensorflow_datasets as tfds  # noqa: E402

from ssync_jax.data.synthetic.geometry import SHAPE_NAMES  # noqa: E402


def _instance_features(num_frames: int) -> dict[str, tfds.features.FeatureConnector]:
    """Per-instance features; `tfds.features.Sequence` stacks them over the n instances.

    Args:
        num_frames: s, the video length.

    Returns:
        Feature connectors keyed by Kubric's instance field names.
    """
    s = num_frames

    def per_frame(*shape: int) -> tfds.features.Tensor:
        return tfds.features.Tensor(shape=(s, *shape), dtype=np.float32)

    return {
        "shape": tfds.features.ClassLabel(names=SHAPE_NAMES),
        "scale": np.float32,
        "mass": np.float32,
        "friction": np.float32,
        "restitution": np.float32,
        "positions": per_frame(3),
        "quaternions": per_frame(4),  # (w, x, y, z)
        "velocities": per_frame(3),
        "angular_velocities": per_frame(3),
        "bboxes_3d": per_frame(8, 3),
        "image_positions": per_frame(2),
        # Only the k_i frames where the instance is visible have a box, hence the ragged Sequence.
        "bboxes": tfds.features.Sequence(tfds.features.BBoxFeature()),
        "bbox_frames": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.int32)),
        "visibility": tfds.features.Tensor(shape=(s,), dtype=np.uint16),
    }


def movi_features(num_frames: int, height: int, width: int) -> tfds.features.FeaturesDict:
    """The FeaturesDict of one video, as Kubric's MOVi builders declare it.

    Args:
        num_frames: s, frames per video.
        height: h, frame height in pixels.
        width: w, frame width in pixels.

    Returns:
        A FeaturesDict whose decoded examples have video uint8 [s, h, w, 3], segmentations uint8
        [s, h, w, 1], depth uint16 [s, h, w, 1], forward/backward_flow uint16 [s, h, w, 2], and
        the metadata, background, instances and camera entries of the data interface.
    """
    s, h, w = num_frames, height, width
    range_feature = tfds.features.Tensor(shape=(2,), dtype=np.float32)  # (min, max) of a uint16 field
    return tfds.features.FeaturesDict(
        {
            "metadata": {
                "video_name": tfds.features.Text(),
                "width": np.int32,
                "height": np.int32,
                "num_frames": np.int32,
                "num_instances": np.uint16,
                "depth_range": range_feature,
                "forward_flow_range": range_feature,
                "backward_flow_range": range_feature,
            },
            "background": tfds.features.Text(),
            "instances": tfds.features.Sequence(_instance_features(s)),
            "camera": {
                "focal_length": np.float32,
                "sensor_width": np.float32,
                "field_of_view": np.float32,
                "positions": tfds.features.Tensor(shape=(s, 3), dtype=np.float32),
                "quaternions": tfds.features.Tensor(shape=(s, 4), dtype=np.float32),
            },
            "video": tfds.features.Video(shape=(s, h, w, 3)),
            "segmentations": tfds.features.Sequence(
                tfds.features.Image(shape=(h, w, 1), dtype=np.uint8), length=s
            ),
            "depth": tfds.features.Sequence(
                tfds.features.Image(shape=(h, w, 1), dtype=np.uint16), length=s
            ),
            "forward_flow": tfds.features.Sequence(
                tfds.features.Tensor(shape=(h, w, 2), dtype=np.uint16), length=s
            ),
            "backward_flow": tfds.features.Sequence(
                tfds.features.Tensor(shape=(h, w, 2), dtype=np.uint16), length=s
            ),
        }
    )
