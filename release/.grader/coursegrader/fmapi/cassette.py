"""What was recorded: interactions (one request, one or more responses)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .scripted import ScriptedInteraction


@dataclass
class Interaction:
    id: str
    request: dict
    responses: list[dict]
    title: str = ""
    served: int = 0

    def next_response(self) -> dict:
        """Recorded responses replay in order and then cycle (deterministic)."""
        response = self.responses[self.served % len(self.responses)]
        self.served += 1
        return response


@dataclass
class Cassette:
    name: str
    interactions: list[Interaction] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    scripted: list[ScriptedInteraction] = field(default_factory=list)  # tried after every recording


class CassetteLibrary:
    """All cassettes loaded for one server, searched together."""

    def __init__(self, cassettes: list[Cassette]):
        self.cassettes = cassettes
        self._lock = threading.Lock()

    @property
    def interactions(self) -> list[Interaction]:
        return [i for c in self.cassettes for i in c.interactions]

    @property
    def scripted(self) -> list[ScriptedInteraction]:
        return [s for c in self.cassettes for s in c.scripted]

    def serve(self, interaction: Interaction) -> dict:
        with self._lock:
            return interaction.next_response()
