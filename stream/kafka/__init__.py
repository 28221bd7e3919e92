"""Every change emostream makes to Faust's and aiokafka's internals, and the guard behind them.

- ``consumer``: the worker's Kafka consumer (fetch wait, recovery hole, commit past in-flight records, live partition
  set): the data-loss fixes.
- ``worker``: the app and worker classes that install it, and drop Faust's spinner.
- ``stall_guard``: reads a stalled input partition again from its committed offset, should a loss of the same kind
  ever come back.
"""
