"""Face detectors and landmarkers. Adding one = a new module here, one import line below, one conf/face/ file."""

from tetrad.faces import dlib68, mtcnn, retinaface  # noqa: F401  (registration side effect)
from tetrad.faces.base import Face, FaceDetector, Landmarker, create_face_detector, create_landmarker
from tetrad.faces.base import face_detector_class, list_face_detectors, list_landmarkers, register_face_detector, register_landmarker

__all__ = ["Face", "FaceDetector", "Landmarker", "create_face_detector", "create_landmarker", "face_detector_class",
           "list_face_detectors", "list_landmarkers", "register_face_detector", "register_landmarker"]
