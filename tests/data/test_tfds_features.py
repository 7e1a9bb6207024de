"""`movi_features`: Kubric MOVi's feature names, shapes, dtypes and feature types."""

import numpy as np
import tensorflow_datasets as tfds

from ssync_jax.data import features

S, H, W = 2, 4, 6  # frames, height, width
N = None  # number of instances
K = None  # frames in which an instance is visible

# The data interface, written out by hand: path -> (decoded shape, dtype).
EXPECTED = {
    "metadata/video_name": ((), np.object_),
    "metadata/width": ((), np.int32),
    "metadata/height": ((), np.int32),
    "metadata/num_frames": ((), np.int32),
    "metadata/num_instances": ((), np.uint16),
    "metadata/depth_range": ((2,), np.float32),
    "metadata/forward_flow_range": ((2,), np.float32),
    "metadata/backward_flow_range": ((2,), np.float32),
    "background": ((), np.object_),
    "instances/shape": ((N,), np.int64),
    "instances/scale": ((N,), np.float32),
    "instances/mass": ((N,), np.float32),
    "instances/friction": ((N,), np.float32),
    "instances/restitution": ((N,), np.float32),
    "instances/positions": ((N, S, 3), np.float32),
    "instances/quaternions": ((N, S, 4), np.float32),
    "instances/velocities": ((N, S, 3), np.float32),
    "instances/angular_velocities": ((N, S, 3), np.float32),
    "instances/bboxes_3d": ((N, S, 8, 3), np.float32),
    "instances/image_positions": ((N, S, 2), np.float32),
    "instances/bboxes": ((N, K, 4), np.float32),
    "instances/bbox_frames": ((N, K), np.int32),
    "instances/visibility": ((N, S), np.uint16),
    "camera/focal_length": ((), np.float32),
    "camera/sensor_width": ((), np.float32),
    "camera/field_of_view": ((), np.float32),
    "camera/positions": ((S, 3), np.float32),
    "camera/quaternions": ((S, 4), np.float32),
    "video": ((S, H, W, 3), np.uint8),
    "segmentations": ((S, H, W, 1), np.uint8),
    "depth": ((S, H, W, 1), np.uint16),
    "forward_flow": ((S, H, W, 2), np.uint16),
    "backward_flow": ((S, H, W, 2), np.uint16),
}


def test_every_field_has_the_interface_shape_and_dtype():
    infos = tfds.core.utils.flatten_nest_dict(features.movi_features(S, H, W).get_tensor_info())
    assert {path: (info.shape, info.np_dtype) for path, info in infos.items()} == EXPECTED


def test_feature_types_are_kubrics():
    spec = features.movi_features(S, H, W)
    assert isinstance(spec["video"], tfds.features.Video)
    for name, dtype in (("segmentations", np.uint8), ("depth", np.uint16)):
        assert isinstance(spec[name], tfds.features.Sequence)
        assert isinstance(spec[name].feature, tfds.features.Image)
        assert spec[name].feature.np_dtype == dtype
    for name in ("forward_flow", "backward_flow"):
        assert type(spec[name].feature) is tfds.features.Tensor
    instances = spec["instances"].feature
    assert isinstance(instances["bboxes"].feature, tfds.features.BBoxFeature)
    assert instances["shape"].names == ["sphere", "cube", "cylinder"]
