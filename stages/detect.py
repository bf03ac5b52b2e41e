"""DVC's entry point of stage `detect`; the stage itself is src/tetrad/stages/detect.py."""

from tetrad.env import die_with, guarded, started_by_a_pipeline
from tetrad.stages.detect import main

if __name__ == "__main__":
    if started_by_a_pipeline():
        die_with(reason="the pipeline that started this stage died")
    raise SystemExit(guarded(main))
