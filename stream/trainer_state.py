"""The retraining job's state: when it last ran a cycle, and per feedback topic and partition, up to which offset the
examples were trained on and invalid records dead-lettered. Kept as JSON in the registry folder, written atomically.

Offsets are the next one to look at. A new topic starts from nothing; a topic whose end offsets went below its marks
(recreated) starts again from nothing, so a record is dead-lettered once and trained on from the cycle after it came.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TopicMarks:
    """One feedback topic's marks: partition -> next offset, for training and for dead letters."""

    trained: dict[int, int] = field(default_factory=dict)
    dead_lettered: dict[int, int] = field(default_factory=dict)

    def behind(self, ends: dict[int, int]) -> list[int]:
        """The partitions whose end offset lies below a mark: the topic was recreated."""
        marks = [*self.trained.items(), *self.dead_lettered.items()]
        return sorted({partition for partition, offset in marks if ends.get(partition, 0) < offset})

    def is_new(self, partition: int, offset: int) -> bool:
        """Whether the example at ``offset`` came after the last cycle."""
        return offset >= self.trained.get(partition, 0)

    def needs_dead_letter(self, partition: int, offset: int) -> bool:
        """Whether the invalid record at ``offset`` has not been dead-lettered yet."""
        return offset >= self.dead_lettered.get(partition, 0)

    def dead_lettered_to(self, partition: int, offset: int) -> None:
        """The invalid record at ``offset`` was dead-lettered."""
        self.dead_lettered[partition] = max(self.dead_lettered.get(partition, 0), offset + 1)

    def trained_to(self, ends: dict[int, int]) -> None:
        """A cycle trained on everything up to ``ends``."""
        self.trained = dict(ends)


@dataclass
class TrainerState:
    """Everything the job remembers between checks (and restarts)."""

    last_cycle: float = 0.0  # epoch seconds of the last cycle
    topics: dict[str, TopicMarks] = field(default_factory=dict)

    def marks(self, topic: str, ends: dict[int, int]) -> tuple[TopicMarks, list[int]]:
        """``topic``'s marks (new ones if it is new, or was recreated: then the partitions found behind)."""
        marks = self.topics.setdefault(topic, TopicMarks())
        behind = marks.behind(ends)
        if behind:
            marks = self.topics[topic] = TopicMarks()
        return marks, behind

    def to_json(self) -> dict[str, Any]:
        """The JSON form (partition numbers as strings, as JSON object keys must be)."""
        return {
            "last_cycle": self.last_cycle,
            "topics": {
                topic: {
                    "trained": {str(p): o for p, o in marks.trained.items()},
                    "dead_lettered": {str(p): o for p, o in marks.dead_lettered.items()},
                }
                for topic, marks in self.topics.items()
            },
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> TrainerState:
        """The state :meth:`to_json` wrote; the first format (a global count, no ``topics``) starts over."""
        if "topics" not in value:
            return cls(float(value.get("last_cycle", 0.0)))
        return cls(
            float(value["last_cycle"]),
            {
                topic: TopicMarks(
                    {int(p): int(o) for p, o in marks["trained"].items()},
                    {int(p): int(o) for p, o in marks["dead_lettered"].items()},
                )
                for topic, marks in value["topics"].items()
            },
        )

    @classmethod
    def load(cls, path: Path) -> TrainerState:
        """The state at ``path``; a fresh one if there is none yet."""
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically (a killed job leaves the previous state whole)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json()), encoding="utf-8")
        os.replace(tmp, path)
