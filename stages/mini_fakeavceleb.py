"""DVC's entry point of stage `mini_fakeavceleb`; the stage itself is src/tetrad/stages/mini_fakeavceleb.py."""

from tetrad.env import die_with, guarded, started_by_a_pipeline
from tetrad.stages.mini_fakeavceleb import main

if __name__ == "__main__":
    if started_by_a_pipeline():
        die_with(reason="the pipeline that started this stage died")
    raise SystemExit(guarded(main))
