"""The only module that touches durable_rules: one ruleset handle, one session per match.

How it is called, and why (measured in ../shared/notes/durable-rules/README.md):

- the C module directly, never `durable.lang` (a global host) nor `engine.Host` (timer
  threads that gave wrong results);
- every fact of a package in ONE `assert_facts` batch, the deal fact last, and every rule
  starting with the deal fact: durable_rules ignores a `$not` fact that arrives after a
  partial match, so no partial match may exist before all facts are in;
- a canary rule on the deal fact that always fires: `delete_state` can crash the process
  on a session that dispatched no action;
- a new session id for every match, and `delete_state` in a `finally`: at most 1024
  sessions may live per handle, and facts of one session must never meet another's;
- results de-duplicated: an `any` or a join fires once per combination;
- numbers always written positionally (`0.00005`, never `5e-05`): durable_rules crashes
  on a fact, and refuses a ruleset, holding a number in exponent notation;
- after an engine error the session is left alone: `delete_state` on a session the
  engine failed in can corrupt the heap.

The extension never releases the GIL; a lock keeps one match at a time per handle.
`SESSION_HOOKS.started` is called as each session starts (metrics count them).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import durable_rules_engine

from termdesk.errors import EngineError

__all__ = [
    "CANARY_RULE",
    "SESSION_HOOKS",
    "Match",
    "RuleEngine",
    "SessionHooks",
    "to_engine_json",
]

CANARY_RULE = "__canary__"

Match = tuple[str, int]  # (engine rule name, index of the matched term, -1 for the deal)

_handles = itertools.count(1)
_sessions = itertools.count(1)


def _nothing() -> None:
    pass


@dataclass(slots=True)
class SessionHooks:
    """Called on the calling thread as every engine session starts; a no-op by default."""

    started: Callable[[], None] = _nothing


SESSION_HOOKS = SessionHooks()


class RuleEngine:
    """One compiled durable_rules ruleset. `match` is safe to call from any thread."""

    def __init__(self, name: str, rules: Mapping[str, object]) -> None:
        if CANARY_RULE not in rules:
            raise ValueError(f"the engine rules need the `{CANARY_RULE}` rule")
        self.name = f"{name}#{next(_handles)}"
        self._lock = threading.Lock()
        try:
            self._handle: int | None = durable_rules_engine.create_ruleset(
                self.name, to_engine_json(rules)
            )
        except durable_rules_engine.error as error:
            raise EngineError(f"durable_rules refused ruleset {self.name}: {error}") from error

    def match(self, facts: Sequence[Mapping[str, object]]) -> set[Match]:
        """Asserts the facts (deal fact last) in a new session; returns what fired."""
        session = str(next(_sessions))
        SESSION_HOOKS.started()
        batch = to_engine_json([{**fact, "sid": session} for fact in facts])
        fired: set[Match] = set()
        with self._lock:
            handle = self._require_handle()
            try:
                _, state = durable_rules_engine.assert_facts(handle, batch)
                result = durable_rules_engine.start_action_for_state(handle, state)
                message = result[1] if result else None
                while message:
                    fired.update(_read(message))
                    message = durable_rules_engine.complete_and_start_action(handle, state)
            except durable_rules_engine.error as error:
                raise EngineError(f"durable_rules failed in {self.name}: {error}") from error
            durable_rules_engine.delete_state(handle, session)
        return fired

    def close(self) -> None:
        """Frees the engine ruleset; call it once no match is in flight."""
        with self._lock:
            if self._handle is not None:
                durable_rules_engine.delete_ruleset(self._handle)
                self._handle = None

    def _require_handle(self) -> int:
        if self._handle is None:
            raise EngineError(f"engine ruleset {self.name} is closed")
        return self._handle


_EXPONENT = re.compile(r"[0-9][eE][-+]?[0-9]")


def to_engine_json(data: object) -> str:
    """JSON text for durable_rules: like `json.dumps`, but no number in exponent notation."""
    text = json.dumps(data)
    # Python writes a float's exponent as `e-NN` or `e+NN`: without either, no regex scan.
    if ("e-" in text or "e+" in text) and _EXPONENT.search(text):
        return _exact_json(data)
    return text


def _exact_json(data: object) -> str:
    if isinstance(data, float) and math.isfinite(data):
        text = format(Decimal(repr(data)), "f")
        return text if "." in text else f"{text}.0"
    if isinstance(data, dict):
        items = (f"{json.dumps(str(key))}:{_exact_json(value)}" for key, value in data.items())
        return "{" + ",".join(items) + "}"
    if isinstance(data, list | tuple):
        return "[" + ",".join(_exact_json(item) for item in data) + "]"
    return json.dumps(data)


# A fired rule's message is `{"<rule>":{"d":{...deal fact...},"s":{"id": "t<i>", ...}}}`:
# every rule starts with the deal fact and each term fact's id is `t<index>`. Quotes inside
# string values are escaped, so these patterns cannot match inside a value.
_ONE_RULE = re.compile(r'\{"([A-Za-z0-9_]+)":\{"d":\{')
_SUBJECT = re.compile(r',"s":\{"id": ?"t([0-9]+)"')


def _read(message: str) -> list[Match]:
    """What one engine message says fired; parses the JSON only when the fast path cannot."""
    head = _ONE_RULE.match(message)
    if head is not None and message.count('":{"d":{') == 1:
        subject = _SUBJECT.search(message)
        rule = head.group(1)
        if rule == CANARY_RULE:
            return []
        return [(rule, int(subject.group(1)) if subject else -1)]
    try:
        fired = json.loads(message)
        return [
            (rule, int(bindings.get("s", {}).get("i", -1)))
            for rule, bindings in fired.items()
            if rule != CANARY_RULE
        ]
    except (ValueError, AttributeError, TypeError) as error:
        raise EngineError(f"unreadable engine result: {message[:200]}") from error
