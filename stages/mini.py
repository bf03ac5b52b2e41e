"""DVC's entry point of stage `mini`; the stage itself is src/tetrad/stages/mini.py."""

from tetrad.env import stage_main
from tetrad.stages.mini import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
