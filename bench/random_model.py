"""Save a random-weight classifier as a checkpoint folder, for benchmarks that time the stream, not the labels.

    python bench/random_model.py OUT [--base DIR] [--tiny]

``--tiny``: 1 layer, 32 wide (inference costs next to nothing: the stream path is what is measured); otherwise the
base encoder's own shapes (all-MiniLM-L6-v2), which times exactly like a fine-tuned model. ``--base`` is a folder with
the base's ``config.json`` and tokenizer (default: the packaged all-MiniLM-L6-v2); no weights are read from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import random_base_model, tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--base", default=None)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (tiny_model if args.tiny else random_base_model)(args.out, args.base)
    print(args.out)


if __name__ == "__main__":
    main()
