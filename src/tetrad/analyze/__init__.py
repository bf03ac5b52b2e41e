"""`tetrad analyze`: the user's own files through the layers and the real fail-fast cascade (tetrad.analyze.run),
one JSON result per file (tetrad.analyze.result). Importing this package loads nothing heavy: the CLI builds its
parser from tetrad.analyze.cli."""
