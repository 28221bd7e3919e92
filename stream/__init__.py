"""The Faust side of emostream: the worker app (``stream.app``), its topics, records, agents, aggregation and views.

Modules: ``app`` (factory), ``topics``, ``schemas`` (input validation, output records), ``serving`` (the model, off
the event loop), ``agents`` (classify, aggregate), ``aggregation`` (event-time windows), ``views`` (web), ``broker``
(the embedded development broker), ``tools`` (produce/tail helpers for the CLI).
"""
