"""The Faust side of emostream: the worker app (``stream.app``), its topics, records, agents, aggregation and views.

Modules: ``app`` (factory), ``topics``, ``schemas`` (input validation, output records), ``serving`` (the model, off
the event loop, hot-swappable), ``announcements`` (model versions on ``emotion.models``), ``agents`` (classify,
aggregate), ``aggregation`` (event-time windows), ``views`` (web), ``broker`` (the embedded development broker),
``process`` (a worker as a child process), ``tools`` (produce/tail/collect helpers), ``demo``.
"""
