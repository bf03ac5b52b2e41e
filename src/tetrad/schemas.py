"""Parquet schemas of every table the pipeline writes, the statuses a row can carry, the cache kinds and the
detector layers: each spelt once, here (docs/architecture.md, "Data contracts").

Labels are int8 with 0 = real, 1 = fake. Every manifest row reaches every downstream table; a row that could
not be processed carries a `status` other than "ok" and a one-line `error`; a file that was cut short keeps what
decoded, its rows `partial` (scored like ok rows) with an `error` saying how much was lost.
"""

from __future__ import annotations

import pyarrow as pa

OK = "ok"
PARTIAL = "partial"  # a cut file, scored on what decoded; the error says how much was lost
NO_AUDIO = "no_audio"
NO_VIDEO = "no_video"  # an audio-only file, for the picture layers
NO_FACE = "no_face"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"  # over extract.limits.max_duration_s
TOO_LARGE = "too_large"  # frames over extract.limits.max_megapixels
TIMEOUT = "timeout"  # over extract.limits.timeout_s of wall time in its worker
DECODE_ERROR = "decode_error"
ERROR = "error"
STATUSES = (OK, PARTIAL, NO_AUDIO, NO_VIDEO, NO_FACE, TOO_SHORT, TOO_LONG, TOO_LARGE, TIMEOUT, DECODE_ERROR, ERROR)
SCORED = (OK, PARTIAL)  # the statuses whose rows carry data and scores


def scored(status: object) -> object:
    """Whether a status (or a pandas Series of them) belongs to a row that carries data and scores."""
    return status.isin(SCORED) if hasattr(status, "isin") else status in SCORED


# What extract writes, one cache folder each; a detector reads one of them (DetectorSpec.input_kind).
KINDS = ("audio", "frames", "faces", "mouths")
FACE_KINDS = ("faces", "mouths")  # cut from face detection; a provenance.json says what cut them

# The detector layers, in cascade order, and the manifest label each is scored against: the audio layer
# against the audio track's own label, the picture layers against the pictures' label, the audio-visual sync
# layer against `label` (a clip is out of sync when either modality is fake; docs/datasets.md states it per
# FakeAVCeleb category). A new layer is one line here (docs/architecture.md, "Adding a layer").
LAYER_LABELS: dict[str, str] = {"audio": "audio_label", "visual": "video_label", "lip": "video_label",
                                "semantic": "video_label", "sync": "label"}
LAYERS = tuple(LAYER_LABELS)


class StatusError(Exception):
    """A file, video or unit that cannot be processed: carries the status its rows get (one of STATUSES) and a
    one-line message naming the file and the problem. Caught per file, never fatal to a dataset run."""

    def __init__(self, status: str, message: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (one of {STATUSES})")
        super().__init__(message)
        self.status = status

_STATUS = [
    pa.field("status", pa.string(), nullable=False),  # one of STATUSES
    pa.field("error", pa.string()),  # one line naming the file and the problem; null when ok
]

MANIFEST = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # dataset-relative path without extension; an id only
        pa.field("path", pa.string(), nullable=False),  # absolute path of the media file
        pa.field("label", pa.int8(), nullable=False),  # 1 when anything in the file is fake
        pa.field("audio_label", pa.int8()),  # modality-true label of the audio track, null when unknown
        pa.field("video_label", pa.int8()),  # modality-true label of the pictures, null when unknown
        pa.field("category", pa.string()),  # dataset category (FakeAVCeleb A-D), null when none
        pa.field("method", pa.string()),  # manipulation method, "real" for real files
        pa.field("group", pa.string(), nullable=False),  # identity/source: never split across tuning folds
        pa.field("split", pa.string()),  # train/val/test where the dataset defines one
        pa.field("sha256", pa.string()),  # of the media file, when the adapter computed it
        *_STATUS,
    ]
)

AUDIO = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("sample_rate", pa.int32(), nullable=False),
        pa.field("num_samples", pa.int64(), nullable=False),
        pa.field("waveform", pa.list_(pa.float32())),  # mono, [-1, 1]; null when status != ok
        *_STATUS,
    ]
)

FRAMES = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame_idx", pa.int32(), nullable=False),  # index in decode order; -1 on a status-only row
        pa.field("face_idx", pa.int16(), nullable=False),  # -1 for whole-frame crops
        pa.field("pts_s", pa.float64()),  # presentation time of the frame
        pa.field("box", pa.list_(pa.float32())),  # x0, y0, x1, y1 in source pixels (face crops only)
        pa.field("landmarks", pa.list_(pa.float32())),  # flattened (x, y): 5 points (faces), 68 points (mouths)
        pa.field("face_score", pa.float32()),  # detector confidence; null on whole frames and interpolated frames
        pa.field("face_detector", pa.string()),  # which detector (+ landmarker) produced box and landmarks
        pa.field("image", pa.binary()),  # uint8 HWC pixels, stored as `encoding` says
        pa.field("encoding", pa.string()),  # raw | png (tetrad.media.pixels); null on status-only rows
        pa.field("height", pa.int16()),
        pa.field("width", pa.int16()),
        pa.field("channels", pa.int8()),
        *_STATUS,
    ]
)

SCORES = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("unit_idx", pa.int32(), nullable=False),  # window / frame / clip index; -1 on a status-only row
        pa.field("frame_idx", pa.int32()),  # source frame of an image unit (first frame of a clip); null for audio
        pa.field("detector", pa.string(), nullable=False),
        pa.field("logit", pa.float32()),  # the detector's own score (see its spec for the convention)
        pa.field("p_fake", pa.float32()),  # probability that the unit is fake, in [0, 1]; metrics use this
        pa.field("upstream_score", pa.float32()),  # upstream's own score where it differs (AASIST: bona fide logit)
        # a unit's vector where the detector's video rule needs more than one number (SyncNet: the AV distances
        # at each audio shift); null for the others
        pa.field("vector", pa.list_(pa.float32())),
        pa.field("t_start_s", pa.float64()),
        pa.field("t_end_s", pa.float64()),
        pa.field("compute_s", pa.float64()),  # this unit's share of the measured model time
        *_STATUS,
    ]
)
