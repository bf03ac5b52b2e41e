"""DVC's entry point of stage `detect`; the stage itself is src/tetrad/stages/detect.py."""

from tetrad.env import stage_main
from tetrad.stages.detect import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
