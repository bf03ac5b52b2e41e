"""DVC's entry point of stage `summary`; the stage itself is src/tetrad/stages/summary.py."""

from tetrad.stages.summary import main

if __name__ == "__main__":
    raise SystemExit(main())
