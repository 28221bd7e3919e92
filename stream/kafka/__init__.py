"""Every change emostream makes to Faust's and aiokafka's internals, and the guard behind them.

- ``consumer``: the worker's Kafka consumer (fetch wait, recovery hole, commit past in-flight records, live partition
  set): the data-loss fixes.
- ``metadata``: the worker's clients never create a topic by asking for its metadata (a lost topic stays visible).
- ``worker``: the app and worker classes that install these, and drop Faust's spinner.
- ``compat``: the exact versions these were written against, and the start-up check of every name they use.
- ``stall_guard``: reads a stalled input partition again from its committed offset, should a loss of the same kind
  ever come back.
"""
