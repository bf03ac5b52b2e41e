"""DVC's entry point of stage `summary`; the stage itself is src/tetrad/stages/summary.py."""

from tetrad.env import stage_main
from tetrad.stages.summary import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
