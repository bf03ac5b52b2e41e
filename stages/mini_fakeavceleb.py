"""DVC's entry point of stage `mini_fakeavceleb`; the stage itself is src/tetrad/stages/mini_fakeavceleb.py."""

from tetrad.env import stage_main
from tetrad.stages.mini_fakeavceleb import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
