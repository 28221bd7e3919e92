"""CPU per event of eight pure steps of the classify and aggregate paths, old way and new, in one run and one process:

- predictions: an inference process turning a micro-batch's probabilities into ``Prediction`` objects, each score
  converted on its own (the baseline, as ``EmotionClassifier._to_prediction`` did) against ``_to_prediction`` (a row's
  ``tolist()``);
- window counting: the aggregation agent counting a micro-batch of one key into the default windows (60 s tumbling,
  300 s hopping by 60 s), every event into every window it joins (the baseline) against
  ``WindowAggregator.add_batch``, which tallies the events of a span whose windows are all open;
- partitions of the labelled records: aiokafka's ``DefaultPartitioner`` key by key (pure-Python murmur2, what
  ``send`` does) against ``stream.kafka.partitioning.partitions_for_keys`` (the batch's keys hashed together);
- labelled output records: a dead-letter fallback made per record as a closure (the baseline, as
  ``BatchLabeller.labelled_outputs`` did) against ``labelled_outputs`` (one shared fallback, the record as origin);
- what an inference process sends: a ``Prediction`` per text, pickled (the baseline, as ``_predict`` did) against
  ``PredictionColumns`` (``EmotionClassifier.predict_columns``), pickled;
- what the worker makes of it: unpickle, a labelled event per text with its scores as a dict, its margin (review is on
  by default) and its JSON record (the baseline) against unpickling the columns, ``stream.labelling.label`` and
  ``LabelledEvent.to_json`` (the scores spliced in as JSON already);
- each key's state with 500 sources (a micro-batch spread over 500 keys with ten minutes of history each): decoded
  from the table's value, counted and encoded again for every record (the baseline) against counted and encoded with
  the decoded state kept between records, as ``stream.key_states.KeyStates`` keeps it;
- the changelog record of each of those states: serialized through the changelog topic's schema (the baseline) against
  ``stream.kafka.changelog.TableWriter.serialized`` (plain ``orjson.dumps`` for a key state).

Each pair is checked to give the same result. Prints microseconds per event and the ratios.

    python bench/classify_steps.py [--batch 512] [--repeat 200]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")


@dataclass(slots=True)
class LabelledAsItWas:
    """``stream.schemas.LabelledEvent`` before session 16: the scores as a dict, the margin computed when asked."""

    id: str
    source: str
    ts: int
    label: str
    score: float
    scores: dict[str, float]
    model_version: str
    processed_at: int


def us_per_event(work: Callable[[], object], events: int, repeat: int) -> float:
    """The least time of 5 rounds of ``repeat`` calls of ``work``, per event, in microseconds."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        best = min(best, time.perf_counter() - started)
    return best / repeat / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512, help="events per micro-batch")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    import numpy as np
    import orjson
    from aiokafka.partitioner import DefaultPartitioner

    from models.classifier import EmotionClassifier
    from models.prediction import Prediction, PredictionColumns, score_margin
    from stream.agents import BatchLabeller
    from stream.aggregation import KeyState, WindowAggregator, WindowSpec
    from stream.delivery import Outgoing
    from stream.kafka.partitioning import partitions_for_keys
    from stream.labelling import Accepted, InputRecord, label
    from stream.schemas import TextEvent

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(len(LABELS)), size=args.batch).astype(np.float32)
    tops = probabilities.argmax(axis=1).tolist()

    def each_score() -> list[Prediction]:
        return [
            Prediction(LABELS[top], float(row[top]), {name: float(p) for name, p in zip(LABELS, row, strict=True)})
            for row, top in zip(probabilities, tops, strict=True)
        ]

    serving = SimpleNamespace(labels=LABELS, multi_label=False)  # what _to_prediction, _to_columns read of a model

    def row_tolist() -> list[Prediction]:
        return [
            EmotionClassifier._to_prediction(serving, row, top) for row, top in zip(probabilities, tops, strict=True)
        ]

    if each_score() != row_tolist():
        raise SystemExit("the two conversions differ")

    class CountedOneByOne(WindowAggregator):
        """The baseline: every event through ``_count``, none tallied."""

        def _count_all(self, state, key, entries, revised, missed):
            for entry in entries:
                self._count(state, key, entry, revised, missed)

    specs = [WindowSpec("tumbling", 60_000, 60_000), WindowSpec("hopping", 300_000, 60_000)]
    start_ms = 1_800_000_000_000
    entries = [
        [LABELS[top], float(row[top]), start_ms + i * 5, f"e{i}", "chat"]  # a batch spans a few seconds
        for i, (row, top) in enumerate(zip(probabilities, tops, strict=True))
    ]

    def counting(aggregator_type: type[WindowAggregator]) -> tuple[Callable[[], object], KeyState]:
        aggregator, state = aggregator_type(specs, grace_ms=5_000, lateness_ms=60_000), KeyState()
        return (lambda: aggregator.add_batch(state, "chat", entries)), state

    one_by_one, reference_state = counting(CountedOneByOne)
    tallied, tallied_state = counting(WindowAggregator)
    one_by_one(), tallied()
    if reference_state.windows.keys() != tallied_state.windows.keys() or any(
        reference_state.windows[w].counts != tallied_state.windows[w].counts for w in reference_state.windows
    ):
        raise SystemExit("the two countings differ")

    keys = [f"tp-{i}".encode() for i in range(100_000, 100_000 + args.batch)]  # event ids, as the bench sends them
    partitions = [0, 1, 2, 3]
    partitioner = DefaultPartitioner()

    def key_by_key() -> list[int]:
        return [partitioner(key, partitions, partitions) for key in keys]

    def all_keys() -> list[int]:
        return partitions_for_keys(keys, partitions)

    if key_by_key() != all_keys():
        raise SystemExit("the two partitioners differ")

    predictions = row_tolist()
    accepted = [
        Accepted(InputRecord(b"{}", "texts", 0, i), TextEvent(f"tp-{i}", "a text", "chat", start_ms + i))
        for i in range(args.batch)
    ]
    labelled = label(accepted, PredictionColumns.of(predictions), "v0001", start_ms + 1000)
    labeller = SimpleNamespace(topics=SimpleNamespace(labelled="labelled"), _output_failed=lambda record, why: None)

    def closure_per_record() -> list[Outgoing]:
        outgoing = []
        for item, result in zip(accepted, labelled, strict=True):

            def output_failed(refusal: str, record: InputRecord = item.record) -> Outgoing:
                return labeller._output_failed(record, refusal)

            outgoing.append(
                Outgoing(
                    "labelled", result.to_json(), key=result.id.encode(), timestamp_ms=result.ts, fallback=output_failed
                )
            )
        return outgoing

    def shared_fallback() -> list[Outgoing]:
        return BatchLabeller.labelled_outputs(labeller, accepted, labelled)

    if [o.value for o in closure_per_record()] != [o.value for o in shared_fallback()]:
        raise SystemExit("the two ways of building labelled records differ")

    def predictions_pickled() -> bytes:
        return pickle.dumps(row_tolist(), protocol=pickle.HIGHEST_PROTOCOL)  # as ProcessPoolExecutor sends results

    def columns_pickled() -> bytes:
        columns = EmotionClassifier._to_columns(serving, probabilities)
        return pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)

    sent_predictions, sent_columns = predictions_pickled(), columns_pickled()
    if PredictionColumns.of(pickle.loads(sent_predictions)) != pickle.loads(sent_columns):
        raise SystemExit("the two predictions differ")

    def records_from_predictions() -> list[bytes]:
        out = []
        for item, prediction in zip(accepted, pickle.loads(sent_predictions), strict=True):
            event = item.event
            result = LabelledAsItWas(
                event.id, event.source, event.ts, prediction.label, prediction.score, prediction.scores, "v0001", 1
            )
            score_margin(result.scores)  # review_picks read it for every event
            record = {"id": result.id, "source": result.source, "ts": result.ts, "label": result.label}
            record.update(score=result.score, scores=result.scores)
            record.update(model_version=result.model_version, processed_at=result.processed_at)
            out.append(orjson.dumps(record))
        return out

    def records_from_columns() -> list[bytes]:
        return [result.to_json() for result in label(accepted, pickle.loads(sent_columns), "v0001", 1)]

    if records_from_predictions() != records_from_columns():
        raise SystemExit("the two ways of making labelled records differ")

    # Many sources: a micro-batch spread over 500 keys, about one event each, every key with ten minutes of history.
    sources = [f"source-{i}" for i in range(500)]
    per_key: dict[str, list] = {key: [] for key in sources}
    for i, entry in enumerate(entries):
        key = sources[i % len(sources)]
        per_key[key].append([*entry[:4], key])
    aggregator = WindowAggregator(specs, grace_ms=5_000, lateness_ms=60_000)

    def warmed() -> dict[str, KeyState]:
        states = {key: KeyState() for key in sources}
        for minute in range(10):
            for key, state in states.items():
                aggregator.add_batch(state, key, [["joy", 0.5, start_ms - (10 - minute) * 60_000, "w", key]])
        return states

    table_values = {key: state.to_json() for key, state in warmed().items()}  # what the table holds
    kept = warmed()  # what stream.key_states keeps: the states those values were written from

    def decoded_per_record() -> None:
        for key, batch in per_key.items():
            state = KeyState.from_json(table_values[key])
            aggregator.add_batch(state, key, batch)
            table_values[key] = state.to_json()

    kept_values = dict(table_values)

    def decoded_once() -> None:
        for key, batch in per_key.items():
            state = kept[key]
            aggregator.add_batch(state, key, batch)
            kept_values[key] = state.to_json()

    decoded_per_record(), decoded_once()
    if table_values != kept_values:
        raise SystemExit("the two ways of keeping key states differ")

    # The changelog record of each key's state: through the changelog topic's schema and Faust's codec registry (the
    # baseline) against TableWriter.serialized (plain orjson for a key state).
    import faust

    from stream.kafka.changelog import TableWriter

    table = faust.App("classify-steps", broker="kafka://127.0.0.1:9").Table("state", default=None)
    changelog, writer = table.changelog_topic, TableWriter(table)

    def through_the_schema() -> list[tuple[bytes, bytes]]:
        return [
            (changelog.prepare_key(key, "json")[0], changelog.prepare_value(value, "json")[0])
            for key, value in kept_values.items()
        ]

    def plain_orjson() -> list[tuple[bytes, bytes]]:
        return [writer.serialized(key, value) for key, value in kept_values.items()]

    if through_the_schema() != plain_orjson():
        raise SystemExit("the two changelog serializations differ")

    pairs = [  # step, the baseline, the code as it is
        ("predictions from probabilities", each_score, row_tolist),
        ("window counting, one key", one_by_one, tallied),
        ("partitions of the labelled records", key_by_key, all_keys),
        ("labelled output records", closure_per_record, shared_fallback),
        ("inference process: predictions pickled", predictions_pickled, columns_pickled),
        ("worker: labelled records from what arrives", records_from_predictions, records_from_columns),
        ("aggregate agent, 500 sources: each key's state", decoded_per_record, decoded_once),
        ("aggregate agent, 500 sources: each key's changelog record", through_the_schema, plain_orjson),
    ]
    rows = [
        (name, us_per_event(before, args.batch, args.repeat), us_per_event(now, args.batch, args.repeat))
        for name, before, now in pairs
    ]
    print(f"micro-batches of {args.batch} events, {args.repeat} per round, the best of 5 rounds\n")
    print("| step | before: us per event | now | before / now |\n| --- | --- | --- | --- |")
    for name, before, now in rows:
        print(f"| {name} | {before:.2f} | {now:.2f} | {before / now:.1f}x |")


if __name__ == "__main__":
    main()
