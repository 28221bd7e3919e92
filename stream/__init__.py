"""The Faust side of emostream: the worker app (``stream.app``), its topics, records, agents, aggregation and views.

Modules: ``app`` (factory), ``transport`` (Faust's Kafka consumer, made safe for restarts and batches in flight),
``topics``, ``schemas`` (input validation, output records), ``serving`` (the model in service, hot-swappable),
``inference`` (the child processes that run it), ``announcements`` (model versions on ``emotion.models``), ``agents``
(classify, aggregate), ``aggregation`` (event-time windows), ``liveness`` (the stall guard), ``views`` (web), ``broker``
(the embedded development broker), ``process`` (a worker as a child process), ``tools`` (produce/tail/collect helpers),
``demo``.
"""
