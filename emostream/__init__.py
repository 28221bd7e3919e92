"""emostream: streaming emotion detection over Kafka.

This package holds what the Faust side (``stream``) and the ML side (``models``) share: the typed settings, logging
set-up and the ``emostream`` command line.
"""

__version__ = "0.1.0"
