"""DVC's entry point of stage `aggregate`; the stage itself is src/tetrad/stages/aggregate.py."""

from tetrad.env import die_with, guarded, started_by_a_pipeline
from tetrad.stages.aggregate import main

if __name__ == "__main__":
    if started_by_a_pipeline():
        die_with(reason="the pipeline that started this stage died")
    raise SystemExit(guarded(main))
