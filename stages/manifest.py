"""DVC's entry point of stage `manifest`; the stage itself is src/tetrad/stages/manifest.py."""

from tetrad.env import stage_main
from tetrad.stages.manifest import main

if __name__ == "__main__":
    raise SystemExit(stage_main(main))
