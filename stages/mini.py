"""DVC's entry point of stage `mini`; the stage itself is src/tetrad/stages/mini.py."""

from tetrad.stages.mini import main

if __name__ == "__main__":
    raise SystemExit(main())
