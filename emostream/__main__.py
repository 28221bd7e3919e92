"""``python -m emostream`` runs the command line, like the ``emostream`` console script."""

from emostream.cli import main

main()
