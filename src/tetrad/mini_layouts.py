"""The mini benchmark re-laid out in a real benchmark's format, so adapters and cross-dataset runs can be tried
end to end without the real data.

`fakeavceleb`: FakeAVCeleb v1.2's tree (`FakeAVCeleb_v1.2/<type>/<race>/<gender>/<id>/<file>.mp4`) and its official
`meta_data.csv` (trailing-comma header, 10 values a row). Each mini source becomes one identity; the mini
methods map onto FakeAVCeleb's names (espeak -> rtvc, self_blend -> faceswap, mouth_retime -> wav2lip), and only
the 24 good clips are exported (the faulty files stay in the mini set).
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

from tetrad.datasets.fakeavceleb import CATEGORIES, META

log = logging.getLogger(__name__)
_METHODS = {"real": "real", "espeak": "rtvc", "self_blend": "faceswap", "mouth_retime": "wav2lip",
            "self_blend+espeak": "faceswap-wav2lip", "mouth_retime+espeak": "wav2lip"}
_RACE, _GENDER = "Caucasian (American)", "women"
_HEADER = ["source", "target1", "target2", "method", "category", "type", "race", "gender", "path", ""]


def export_fakeavceleb(mini_root: Path, out: Path) -> Path:
    """Write `out/FakeAVCeleb_v1.2/` from a generated mini benchmark; returns the dataset root."""
    root = out / "FakeAVCeleb_v1.2"
    shutil.rmtree(root, ignore_errors=True)
    with open(mini_root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["video_id"].startswith("clips/")]
    meta = []
    for row in rows:
        identity = f"id{int(row['group'].lstrip('s')):05d}"
        kind = CATEGORIES[row["category"]][0]
        folder = Path(kind) / _RACE / _GENDER / identity
        name = f"{Path(row['file']).stem}.mp4"
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(mini_root / row["file"], root / folder / name)
        meta.append([identity, "-", "-", _METHODS[row["method"]], row["category"], kind, _RACE, _GENDER, name,
                     f"FakeAVCeleb/{folder.as_posix()}"])
    with open(root / META, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(_HEADER)
        writer.writerows(meta)
    log.info("exported %d mini clips in FakeAVCeleb v1.2 layout to %s", len(meta), root)
    return root
