"""DVC's entry point of stage `aggregate`; the stage itself is src/tetrad/stages/aggregate.py."""

from tetrad.env import stage_main
from tetrad.stages.aggregate import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
