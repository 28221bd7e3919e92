"""``python -m emostream`` runs the command line, like the ``emostream`` console script."""

from emostream.cli import main

if __name__ == "__main__":  # not when a spawned child process imports this module again
    main()
