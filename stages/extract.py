"""DVC's entry point of stage `extract`; the stage itself is src/tetrad/stages/extract.py."""

from tetrad.env import stage_main
from tetrad.stages.extract import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
