"""DVC's entry point of stage `mini_fakeavceleb`; the stage itself is src/tetrad/stages/mini_fakeavceleb.py."""

from tetrad.stages.mini_fakeavceleb import main

if __name__ == "__main__":
    raise SystemExit(main())
