"""Suggested trades: violations -> candidate changes -> verified trades -> counter-proposal.

For each violation the candidates come from three places:

    RULESET      the rule's own `trades` (values, parameters, another field's value, terms
                 to add or remove, or `manual` text for what a person must supply)
    ALTERNATIVE  each branch of an any-of requirement, repaired on its own
    REPAIR       the violated condition itself: a bound becomes "set to the bound", a
                 required boolean "set true", an allowed value "set to it", a missing term
                 "add it" with the ruleset's `defaults`, a `when` on the term's own fields
                 "step back from it"; a value only a person can give (a text, a list, a
                 scope) makes a trade that says what to supply and is never verified

Every automatic candidate is applied to a copy of the package and the copy is matched
again by the engine (`Evaluator.rematch`: only the rules reading a changed term type
run). A trade is verified when its rule no longer fires and no new BLOCK or REVIEW
appeared; when a candidate clears its rule but breaks another, the repairs of what it
broke are added to it and the combination is checked instead. The rest is dropped.

The counter-proposal applies the cheapest verified trade of every BLOCK and REVIEW at
once, mending trades that undo each other with repairs found on the combined package; if
that does not hold, it adds trades one at a time, BLOCKs first, keeping each that clears
its rule and lowers the (BLOCK, REVIEW) count. Its evaluation comes from the engine's
matches of the final package. Costs come from the ruleset's buckets.

Everything here is pure: packages in, trades out; the engine is reached only through the
evaluator. Per-request work is bounded by `TradeLimits`.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from types import MappingProxyType

from termdesk import facts
from termdesk.evaluator import Evaluator, Match, moved
from termdesk.model import (
    ChangeOp,
    CounterProposal,
    Money,
    PackageChange,
    Severity,
    Term,
    TermPackage,
    Trade,
    TradeAdvice,
    TradeSource,
    Value,
)
from termdesk.ruleset.conditions import (
    Absent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    Count,
    Field,
    NoneOf,
    Not,
    NoTerm,
    OneOf,
    Present,
    TermExists,
    fields_in,
    to_nnf,
)
from termdesk.ruleset.model import Change, Rule, Ruleset
from termdesk.ruleset.reference import holds
from termdesk.vocabulary import FieldSpec, Vocabulary

__all__ = ["BUCKET_COST", "TradeAdvisor", "TradeLimits", "apply_changes"]

# The concession cost of changing a term of each bucket; a trade costs the sum.
BUCKET_COST: Mapping[str, float] = {"giveaway": 1.0, "tradable": 2.0, "must_have": 4.0}
_UNLISTED_COST = BUCKET_COST["tradable"]  # a term type no bucket lists
_HEAVY = (Severity.BLOCK, Severity.REVIEW)
_SOURCE_ORDER = {TradeSource.RULESET: 0, TradeSource.ALTERNATIVE: 1, TradeSource.REPAIR: 2}


@dataclass(frozen=True, slots=True)
class TradeLimits:
    """Per-request bounds on the search (configurable on the server)."""

    trades_per_violation: int = 3  # verified trades offered per violation
    candidates_per_violation: int = 8  # automatic candidates tried per violation
    engine_calls: int = 120  # engine matches per request, verification and proposal


_Fix = tuple[PackageChange, ...] | str  # edits, or what a person must supply


@dataclass(frozen=True, slots=True)
class _Candidate:
    source: TradeSource
    changes: tuple[PackageChange, ...]
    summary: str = ""
    needs_input: str = ""
    step_back: bool = False  # undoes what the partner asked instead of compensating it


@dataclass(frozen=True, slots=True)
class _Pending:
    """A candidate waiting to be matched, with the term types it changes and re-matches."""

    changes: tuple[PackageChange, ...]
    touched: frozenset[str]
    affected: frozenset[int]
    needed: frozenset[str]


@dataclass(slots=True)
class _Session:
    """Candidates matched in one engine session, and the term types they change and read."""

    items: list[_Pending]
    touched: set[str]
    needed: set[str]

    def admits(self, item: _Pending) -> bool:
        """Whether `item` changes nothing the others read, and reads nothing they change."""
        return not (item.touched & self.needed) and not (self.touched & item.needed)

    def add(self, item: _Pending) -> None:
        self.items.append(item)
        self.touched |= item.touched
        self.needed |= item.needed


@dataclass(frozen=True, slots=True)
class _RulePlan:
    """What the search derives from one rule's conditions, made once per evaluator."""

    branches: tuple[Condition, ...]  # `require` in negation normal form, split at any-of
    source: TradeSource  # of the repairs of `require`
    step_back: Condition | None  # not(`when`) in negation normal form
    removable: frozenset[str]  # fields a step back may remove: `when` tests their presence
    ask: bool  # the author wrote no `manual` trade: a repair may ask a person
    asked: tuple[str, ...]  # the subject's fields `when` reads, for summaries


def _rule_plan(rule: Rule) -> _RulePlan:
    branches: tuple[Condition, ...] = ()
    if rule.require is not None:
        requirement = to_nnf(rule.require)
        branches = requirement.items if isinstance(requirement, AnyOf) else (requirement,)
    when = rule.when
    return _RulePlan(
        branches=branches,
        source=TradeSource.ALTERNATIVE if len(branches) > 1 else TradeSource.REPAIR,
        step_back=_step_back(when),
        removable=frozenset(leaf.field.name for leaf in _leaves(when) if isinstance(leaf, Present))
        if when is not None
        else frozenset(),
        ask=not any(option.manual for option in rule.trades),
        asked=tuple(f.name for f in fields_in(when) if f.scope == "term"),
    )


def _step_back(when: Condition | None) -> Condition | None:
    """not(`when`) in negation normal form; None without a `when`, or when it cannot be
    negated (a regular expression match: a pattern has no complement we can write)."""
    if when is None:
        return None
    try:
        return to_nnf(Not(when))
    except ValueError:  # `to_nnf` refuses to negate a regular expression match
        return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the search derives from one ruleset and the vocabulary, made once per evaluator
    (`_plan_for`)."""

    vocabulary: Vocabulary
    rules: tuple[_RulePlan, ...]  # by rule index
    bucket_costs: Mapping[str, float]  # by term type, from the first bucket listing it
    giveaways: tuple[_Giveaway, ...]
    leaf_edits: Mapping[tuple[int, str], Sequence[_FieldEdit] | str]  # see `_leaf_edits`


@dataclass(frozen=True, slots=True)
class _Giveaway:
    """A giveaway term type, its trade (adding the term with its defaults), verified or
    not, and the key of the trade's changes."""

    term_type: str
    unverified: Trade  # shared by every answer, as are its changes: read-only
    verified: Trade
    key: tuple[object, ...]


def _make_plan(ruleset: Ruleset, vocabulary: Vocabulary) -> _Plan:
    bucket_costs: dict[str, float] = {}
    for bucket, types in ruleset.buckets.items():
        for term_type in types:
            bucket_costs.setdefault(term_type, BUCKET_COST[bucket])
    giveaways = []
    for term_type in ruleset.buckets.get("giveaway", ()):
        fields = MappingProxyType(dict(ruleset.defaults.get(term_type, {})))
        changes = (PackageChange(ChangeOp.ADD_TERM, term=Term(term_type, fields)),)
        spec = vocabulary.term(term_type)
        meaning = f": {spec.meaning}" if spec is not None and spec.meaning else ""
        trade = Trade(
            rule_id="",
            term_index=-1,
            summary=f"We can add {_describe_term(term_type, fields)}{meaning}",
            changes=changes,
            verified=False,
            cost=bucket_costs.get(term_type, _UNLISTED_COST),
            source=TradeSource.GIVEAWAY,
        )
        verified = dataclasses.replace(trade, verified=True)
        giveaways.append(_Giveaway(term_type, trade, verified, _key(changes)))
    rules = tuple(_rule_plan(rule) for rule in ruleset.rules)
    leaf_edits = _leaf_edits(ruleset, rules, vocabulary)
    return _Plan(vocabulary, rules, bucket_costs, tuple(giveaways), leaf_edits)


def _leaf_edits(
    ruleset: Ruleset, plans: Sequence[_RulePlan], vocabulary: Vocabulary
) -> dict[tuple[int, str], Sequence[_FieldEdit] | str]:
    """The options `_leaf_values` gives each leaf of the plans' conditions that `fixes` may
    repair, by id of the leaf and type of the term repaired. Comparisons with a field are
    left out: what they need depends on the term's values."""
    edits: dict[tuple[int, str], Sequence[_FieldEdit] | str] = {}

    def walk(condition: Condition | None, term_type: str | None) -> None:
        match condition:
            case AllOf(items) | AnyOf(items):
                for item in items:
                    walk(item, term_type)
            case TermExists(other, where):
                walk(where, other)
            case None | NoTerm() | Compare(_, _, Field()):
                pass
            case _ if term_type is not None:
                spec = vocabulary.field(term_type, _field_of(condition))
                options = _leaf_values(condition, {}, spec)
                edits[id(condition), term_type] = (
                    options if isinstance(options, str) else tuple(options)
                )

    for rule, plan in zip(ruleset.rules, plans, strict=True):
        for condition in (*plan.branches, plan.step_back):
            walk(condition, rule.term)
    return edits


_plans: weakref.WeakKeyDictionary[Evaluator, _Plan] = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def _plan_for(evaluator: Evaluator, vocabulary: Vocabulary) -> _Plan:
    """The plan of the evaluator's ruleset with `vocabulary` (made on first use, and again
    when another vocabulary asks)."""
    with _plans_lock:
        plan = _plans.get(evaluator)
        if plan is None or plan.vocabulary is not vocabulary:
            plan = _plans[evaluator] = _make_plan(evaluator.ruleset, vocabulary)
    return plan


def apply_changes(
    package: TermPackage, changes: Sequence[PackageChange]
) -> tuple[TermPackage, dict[int, int], set[str]]:
    """The changed copy, the new index of every kept term, and the term types touched.

    Field changes apply first, then removals, then added terms at the end, whatever
    order the changes come in (the contract's rule).
    """
    fields: dict[int, dict[str, Value]] = {}
    removed: set[int] = set()
    added: list[Term] = []
    touched: set[str] = set()
    for change in changes:
        if change.op is ChangeOp.ADD_TERM and change.term is not None:
            added.append(change.term)
            touched.add(change.term.type)
            continue
        index = change.term_index
        touched.add(package.terms[index].type)
        if change.op is ChangeOp.SET_FIELD:
            _copied(fields, package, index)[change.field] = change.value
        elif change.op is ChangeOp.REMOVE_FIELD:
            _copied(fields, package, index).pop(change.field, None)
        elif change.op is ChangeOp.REMOVE_TERM:
            removed.add(index)
    # Removed terms close up.
    kept = [index for index in range(len(package.terms)) if index not in removed]
    terms = [
        Term(package.terms[index].type, fields[index]) if index in fields else package.terms[index]
        for index in kept
    ]
    terms.extend(added)
    index_map = {old: new for new, old in enumerate(kept)}
    return TermPackage(package.deal_id, package.context, tuple(terms)), index_map, touched


def _copied(
    fields: dict[int, dict[str, Value]], package: TermPackage, index: int
) -> dict[str, Value]:
    if index not in fields:
        fields[index] = dict(package.terms[index].fields)
    return fields[index]


class TradeAdvisor:
    """Finds, verifies and combines trades for packages evaluated by one evaluator."""

    def __init__(
        self, evaluator: Evaluator, vocabulary: Vocabulary, limits: TradeLimits = TradeLimits()
    ) -> None:
        self.evaluator = evaluator
        self.ruleset = evaluator.ruleset
        self.vocabulary = vocabulary
        self.limits = limits
        self.plan = _plan_for(evaluator, vocabulary)

    def advise(self, package: TermPackage, matches: Set[Match]) -> TradeAdvice:
        """Trades for every violation in `matches`, a counter-proposal and giveaways."""
        if not matches:
            return TradeAdvice((), None, (), 0)
        search = _Search(self, package, matches)
        candidates = {match: search.sorted_candidates(match) for match in search.ordered(matches)}
        search.prefetch(candidates.values())
        offers = {match: search.trades_for(match, found) for match, found in candidates.items()}
        proposal = search.counter_proposal(offers)
        giveaways = search.giveaways()
        trades = tuple(trade for match_trades in offers.values() for trade in match_trades)
        return TradeAdvice(trades, proposal, giveaways, search.calls, search.truncated)


class _Search:
    """The state of one request's search: the package, its matches and the engine budget."""

    def __init__(
        self,
        advisor: TradeAdvisor,
        package: TermPackage,
        matches: Set[Match],
        known: Mapping[int, facts.Fact] | None = None,
    ) -> None:
        """`known` lends facts already projected (see `facts.project`): the search of a
        changed copy borrows those of the terms it shares with the package."""
        self.advisor = advisor
        self.rules = advisor.ruleset.rules
        self.package = package
        self.matches = frozenset(matches)
        self.calls = 0
        self.truncated = False
        projected = facts.project(package, advisor.evaluator.compiled, known=known)
        self.term_facts = projected[:-1]
        self.deal_fact = projected[-1]
        self.fact_at = {int(str(fact["i"])): fact for fact in self.term_facts}
        # A changed copy keeps its context and the Term objects it did not change: their
        # facts are reused.
        self._known = {id(package.terms[index]): fact for index, fact in self.fact_at.items()}
        self._known[id(package.context)] = self.deal_fact
        # The matches of each changed copy matched so far, and its index map, by `_key`.
        self._checked: dict[tuple[object, ...], tuple[frozenset[Match], dict[int, int]]] = {}
        # Changes that remove no term keep every index: this one map stands for them all.
        self._identity = {index: index for index in range(len(package.terms))}
        self._keys: dict[int, tuple[tuple[PackageChange, ...], tuple[object, ...]]] = {}
        self._change_keys: dict[int, tuple[PackageChange, tuple[object, ...]]] = {}

    def key(self, changes: tuple[PackageChange, ...]) -> tuple[object, ...]:
        """`_key(changes)`, made once per tuple of changes (the entry keeps it alive)."""
        entry = self._keys.get(id(changes))
        if entry is None:
            entry = self._keys[id(changes)] = (changes, tuple(map(self.change_key, changes)))
        return entry[1]

    def change_key(self, change: PackageChange) -> tuple[object, ...]:
        """`_change_key(change)`, made once per change: merged tuples of changes share them."""
        entry = self._change_keys.get(id(change))
        if entry is None:
            entry = self._change_keys[id(change)] = (change, _change_key(change))
        return entry[1]

    # -- ordering and evaluation

    def ordered(self, matches: Iterable[Match]) -> list[Match]:
        rank = {Severity.BLOCK: 0, Severity.REVIEW: 1, Severity.WARN: 2}
        return sorted(matches, key=lambda m: (rank[self.rules[m[0]].severity], m))

    def rematch(
        self, changes: tuple[PackageChange, ...], key: tuple[object, ...] | None = None
    ) -> tuple[frozenset[Match], dict[int, int]] | None:
        """The matches of the package with `changes` (whose `_key` is `key`, when known)
        applied; None once the budget is spent."""
        if key is None:
            key = self.key(changes)
        known = self._checked.get(key)
        if known is not None:
            return known
        if self.calls >= self.advisor.limits.engine_calls:
            self.truncated = True
            return None
        self.calls += 1
        if all(
            change.op is ChangeOp.ADD_TERM
            and change.term is not None
            and not self.advisor.evaluator.rules_reading((change.term.type,))
            for change in changes
        ):
            # Only terms no rule reads are added (a giveaway, often): nothing can change.
            result = self._checked[key] = self.matches, self._identity
            return result
        variant, index_map, touched = apply_changes(self.package, changes)
        found = frozenset(
            self.advisor.evaluator.rematch(
                self.matches, variant, touched, index_map, known=self._known
            )
        )
        if len(index_map) == len(self.package.terms):
            index_map = self._identity  # no term removed
        result = self._checked[key] = found, index_map
        return result

    def outcome(
        self, target: Match, changes: tuple[PackageChange, ...]
    ) -> tuple[bool, list[Match]] | None:
        """Whether `changes` clear `target`, and the BLOCK/REVIEW matches they introduce
        (in the changed package's indices)."""
        result = self.rematch(changes)
        if result is None:
            return None
        found, index_map = result
        if index_map is self._identity:
            cleared, before = target not in found, self.matches
        else:
            cleared = not (moved([target], index_map) & found)
            before = frozenset(moved(self.matches, index_map))
        introduced = [match for match in found - before if self.rules[match[0]].severity in _HEAVY]
        return cleared, sorted(introduced)

    # -- trades for one violation

    def sorted_candidates(self, match: Match) -> list[_Candidate]:
        return sorted(
            self.candidates(match),
            key=lambda c: (self.cost(c.changes), _SOURCE_ORDER.get(c.source, 3)),
        )

    def prefetch(self, candidate_lists: Iterable[Sequence[_Candidate]]) -> None:
        """Matches the first candidates of every violation, several in one engine session.

        Candidates that only set or remove fields can share a session when none changes a
        term type that the rules another one re-matches read: each rule's matches then
        are exactly those of its own candidate alone. The results fill the cache that
        verification reads, so `outcome` finds them without an engine call.
        """
        evaluator = self.advisor.evaluator
        sessions: list[_Session] = []
        seen: set[tuple[object, ...]] = set()
        for candidates in candidate_lists:
            automatic = [c for c in candidates if c.changes and not c.needs_input]
            for candidate in automatic[: self.advisor.limits.trades_per_violation]:
                key = self.key(candidate.changes)
                if key in seen or any(
                    change.op not in (ChangeOp.SET_FIELD, ChangeOp.REMOVE_FIELD)
                    for change in candidate.changes
                ):
                    continue
                seen.add(key)
                touched = frozenset(
                    self.package.terms[c.term_index].type for c in candidate.changes
                )
                affected = evaluator.rules_reading(touched)
                needed = evaluator.types_read(affected)
                item = _Pending(candidate.changes, touched, affected, needed)
                session = next((s for s in sessions if s.admits(item)), None)
                if session is None:
                    sessions.append(_Session([item], set(touched), set(needed)))
                else:
                    session.add(item)
        for session in sessions:
            if len(session.items) < 2:
                continue
            result = self.rematch(_merge(*(item.changes for item in session.items)))
            if result is None:
                return
            # The session's matches differ from the package's only in rules some item
            # re-matched: each item's are the package's, changed where its own rules changed.
            changed = result[0] ^ self.matches
            for item in session.items:
                own = {match for match in changed if match[0] in item.affected}
                self._checked[self.key(item.changes)] = self.matches ^ own, self._identity

    def trades_for(self, match: Match, candidates: Sequence[_Candidate]) -> list[Trade]:
        rule = self.rules[match[0]]
        verified: list[Trade] = []
        manual: list[Trade] = []
        seen: set[tuple[object, ...]] = set()
        tried = 0
        for candidate in candidates:
            if candidate.needs_input:
                manual.append(self.trade(match, candidate, verified=False))
                continue
            key = self.key(candidate.changes)
            if key in seen or len(verified) >= self.advisor.limits.trades_per_violation:
                continue
            seen.add(key)
            tried += 1
            if tried > self.advisor.limits.candidates_per_violation:
                self.truncated = True
                break
            holding = self.make_hold(match, candidate.changes)
            if holding is not None:
                verified.append(self.trade(match, candidate, verified=True, changes=holding))
        verified.sort(key=lambda trade: trade.cost)
        if not verified and not manual and rule.trades == ():
            manual.append(self.trade(match, self.ask_a_person(match), verified=False))
        return [*verified, *manual]

    def make_hold(
        self, match: Match, changes: tuple[PackageChange, ...], depth: int = 2
    ) -> tuple[PackageChange, ...] | None:
        """`changes`, or `changes` plus repairs of what they break, if that clears `match`."""
        result = self.outcome(match, changes)
        if result is None:
            return None
        cleared, introduced = result
        if not cleared:
            return None
        if not introduced:
            return changes
        if depth == 0 or any(c.op is ChangeOp.REMOVE_TERM for c in changes):
            return None
        # No term was removed: indices of the original terms are unchanged in the variant.
        variant, _, _ = apply_changes(self.package, changes)
        combined = changes
        for broken in introduced:
            if broken[1] >= len(self.package.terms):
                return None  # a rule on an added term: left to the ruleset's author
            repair = self.first_repair(variant, broken)
            if repair is None:
                return None
            combined = _merge(combined, repair)
        return self.make_hold(match, combined, depth - 1)

    def first_repair(self, variant: TermPackage, broken: Match) -> tuple[PackageChange, ...] | None:
        sub = _Search(self.advisor, variant, frozenset(), known=self._known)
        for candidate in sorted(sub.candidates(broken), key=lambda c: sub.cost(c.changes)):
            if not candidate.needs_input and candidate.changes:
                return candidate.changes
        return None

    def trade(
        self,
        match: Match,
        candidate: _Candidate,
        *,
        verified: bool,
        changes: tuple[PackageChange, ...] | None = None,
    ) -> Trade:
        """The trade of `candidate`, with `changes` instead of its own when given."""
        rule = self.rules[match[0]]
        if changes is None:
            changes = candidate.changes
        summary = candidate.summary or _summary(
            self.advisor.plan.rules[match[0]],
            match[1],
            self.package,
            candidate,
            changes=changes,
            vocabulary=self.advisor.vocabulary,
        )
        return Trade(
            rule_id=rule.id,
            term_index=match[1],
            summary=summary,
            changes=changes,
            verified=verified,
            cost=self.cost(changes) if changes else self.bucket_cost(rule.reported_term),
            source=candidate.source,
            needs_input=candidate.needs_input,
        )

    def cost(self, changes: Iterable[PackageChange]) -> float:
        total = 0.0
        for change in changes:
            term_type = (
                change.term.type
                if change.term is not None
                else self.package.terms[change.term_index].type
            )
            total += self.bucket_cost(term_type)
        return total

    def bucket_cost(self, term_type: str) -> float:
        return self.advisor.plan.bucket_costs.get(term_type, _UNLISTED_COST)

    # -- candidates

    def candidates(self, match: Match) -> list[_Candidate]:
        rule_index, term_index = match
        rule = self.rules[rule_index]
        found: list[_Candidate] = []
        for option in rule.trades:
            if option.manual:
                found.append(_Candidate(TradeSource.RULESET, (), option.summary, option.manual))
                continue
            changes = self.resolve(option.changes, term_index)
            if changes:
                found.append(_Candidate(TradeSource.RULESET, changes, option.summary))
        found.extend(self.repairs(rule_index, term_index))
        allowed = [c for c in found if not self.removes_must_have(c.changes)]
        unique: dict[tuple[object, ...], _Candidate] = {}
        for candidate in allowed:
            unique.setdefault((*self.key(candidate.changes), candidate.needs_input), candidate)
        return list(unique.values())

    def removes_must_have(self, changes: Iterable[PackageChange]) -> bool:
        must_have = self.advisor.ruleset.buckets.get("must_have", ())
        return any(
            change.op is ChangeOp.REMOVE_TERM
            and self.package.terms[change.term_index].type in must_have
            for change in changes
        )

    def resolve(self, changes: Sequence[Change], term_index: int) -> tuple[PackageChange, ...]:
        """The ruleset's changes made concrete for this package; () when one cannot apply."""
        resolved: list[PackageChange] = []
        pending: dict[tuple[int, str], Value] = {}
        for change in changes:
            if change.op == "add_term":
                fields = {
                    **self.advisor.ruleset.defaults.get(change.term_type, {}),
                    **change.fields,
                }
                resolved.append(
                    PackageChange(ChangeOp.ADD_TERM, term=Term(change.term_type, fields))
                )
                continue
            target = self.target_term(change.term_type, term_index)
            if target is None:
                return ()
            if change.op == "remove_term":
                resolved.append(PackageChange(ChangeOp.REMOVE_TERM, target))
            elif change.op == "remove_field":
                resolved.append(PackageChange(ChangeOp.REMOVE_FIELD, target, change.field))
            else:
                value = change.value
                if change.from_field:
                    value = pending.get(
                        (target, change.from_field),
                        self.package.terms[target].fields.get(change.from_field),
                    )
                    if value is None:
                        # The source is empty: take the value another violated rule's
                        # trade gives it (`commitment_period = duration` once a duration
                        # is set), and set both.
                        value = self.setter(target, change.from_field)
                        if value is None:
                            return ()
                        pending[target, change.from_field] = value
                        resolved.append(
                            PackageChange(ChangeOp.SET_FIELD, target, change.from_field, value)
                        )
                if self.package.terms[target].fields.get(change.field) == value:
                    continue
                pending[target, change.field] = value
                resolved.append(PackageChange(ChangeOp.SET_FIELD, target, change.field, value))
        return tuple(resolved)

    def setter(self, term_index: int, field: str) -> Value:
        """The value a ruleset trade of another violation on the same term gives `field`."""
        for rule_index, matched in sorted(self.matches):
            if matched != term_index:
                continue
            for option in self.rules[rule_index].trades:
                for change in option.changes:
                    if change.op == "set_field" and change.field == field and not change.from_field:
                        return change.value
        return None

    def target_term(self, term_type: str, term_index: int) -> int | None:
        if term_index >= 0 and self.package.terms[term_index].type == term_type:
            return term_index
        return next(
            (i for i, term in enumerate(self.package.terms) if term.type == term_type), None
        )

    def repairs(self, rule_index: int, term_index: int) -> list[_Candidate]:
        """Automatic repairs: make `require` hold, or step back from `when`.

        What only a person can supply is asked for only when the rule's author wrote no
        `manual` trade of their own. Stepping back never removes a field to dodge a
        comparison (no rate is not a lower rate); it removes one only where the `when`
        is about that field being there at all.
        """
        plan = self.advisor.plan.rules[rule_index]
        found: list[_Candidate] = []
        for branch in plan.branches:
            for fix in self.fixes(branch, term_index):
                if isinstance(fix, str):
                    if plan.ask:
                        found.append(_Candidate(plan.source, (), needs_input=fix))
                elif fix:
                    found.append(_Candidate(plan.source, fix))
        if plan.step_back is not None and term_index >= 0:
            for fix in self.fixes(plan.step_back, term_index):
                if not fix or isinstance(fix, str):
                    continue
                if all(c.op is not ChangeOp.REMOVE_FIELD or c.field in plan.removable for c in fix):
                    found.append(_Candidate(TradeSource.REPAIR, fix, step_back=True))
        return found

    def fixes(self, condition: Condition, term_index: int) -> list[_Fix]:
        """Ways to make `condition` (in negation normal form) hold on the term at
        `term_index` (-1: the deal): edits, or a text saying what a person must supply.
        A condition that already holds needs no edit."""
        if holds(condition, self.fact_at.get(term_index), self.deal_fact, self.term_facts):
            return [()]
        match condition:
            case AllOf(items):
                parts = [self.fixes(item, term_index) for item in items]
                if any(not part for part in parts):
                    return []
                people = [fix for part in parts for fix in part if isinstance(fix, str)]
                if people:
                    return ["; ".join(dict.fromkeys(people))]
                edit_parts = [[fix for fix in part if not isinstance(fix, str)] for part in parts]
                combos = itertools.islice(itertools.product(*edit_parts), 4)
                return [tuple(edit for edits in combo for edit in edits) for combo in combos]
            case AnyOf(items):
                return [fix for item in items for fix in self.fixes(item, term_index)]
            case TermExists(term_type, where):
                existing = [
                    i
                    for i, term in enumerate(self.package.terms)
                    if term.type == term_type and i != term_index
                ]
                if existing and where is not None:
                    return self.fixes(where, existing[0])
                return self.add_term(term_type, where)
            case NoTerm(term_type, _):
                return [
                    tuple(
                        PackageChange(ChangeOp.REMOVE_TERM, i)
                        for i, term in enumerate(self.package.terms)
                        if term.type == term_type and i != term_index
                    )
                ]
        if term_index < 0:
            return []
        return self.leaf_fix(condition, term_index)

    def leaf_fix(self, condition: Condition, term_index: int) -> list[_Fix]:
        term = self.package.terms[term_index]
        edits = self.advisor.plan.leaf_edits.get((id(condition), term.type))
        if edits is None:  # a comparison with a field (see `_leaf_edits`)
            match condition:
                case Compare(Field("term", name), "<=" | ">=" | "==", Field("term", other)) if (
                    other not in term.fields
                    and (value := self.setter(term_index, other)) is not None
                ):
                    return [
                        (
                            PackageChange(ChangeOp.SET_FIELD, term_index, other, value),
                            PackageChange(ChangeOp.SET_FIELD, term_index, name, value),
                        )
                    ]
            spec = self.advisor.vocabulary.field(term.type, _field_of(condition))
            edits = _leaf_values(condition, term.fields, spec)
        if isinstance(edits, str):
            return [edits]
        return [
            (PackageChange(ChangeOp.REMOVE_FIELD, term_index, edit.name),)
            if edit.remove
            else (PackageChange(ChangeOp.SET_FIELD, term_index, edit.name, edit.value),)
            for edit in edits
        ]

    def add_term(self, term_type: str, where: Condition | None) -> list[_Fix]:
        fields: dict[str, Value] = dict(self.advisor.ruleset.defaults.get(term_type, {}))
        if where is not None:
            for leaf in where.items if isinstance(where, AllOf) else (where,):
                spec = self.advisor.vocabulary.field(term_type, _field_of(leaf))
                options = _leaf_values(leaf, fields, spec)
                if isinstance(options, str):
                    if not _holds_plain(leaf, fields):
                        return [f"{options} in a new {_label(term_type)} term"]
                    continue
                if not options:
                    return []
                if not options[0].remove:
                    fields[options[0].name] = options[0].value
        return [(PackageChange(ChangeOp.ADD_TERM, term=Term(term_type, fields)),)]

    def ask_a_person(self, match: Match) -> _Candidate:
        rule = self.rules[match[0]]
        what = rule.field or "the terms this rule checks"
        return _Candidate(
            TradeSource.REPAIR, (), needs_input=f"change `{what}` so that: {rule.message}"
        )

    # -- counter-proposal and giveaways

    def counter_proposal(self, offers: Mapping[Match, list[Trade]]) -> CounterProposal | None:
        targets = [
            (match, [t for t in trades if t.verified])
            for match, trades in offers.items()
            if self.rules[match[0]].severity in _HEAVY
        ]
        targets = [(match, trades) for match, trades in targets if trades]
        if not targets:
            return None
        chosen = [trades[0] for _, trades in targets]
        changes = _merge(*(trade.changes for trade in chosen))
        extra: tuple[PackageChange, ...] = ()
        mended = self.mend([m for m, _ in targets], changes)
        if mended is None:
            chosen, changes = self.greedy(targets)
        else:
            extra = mended
            changes = _merge(changes, extra)
        if not chosen:
            return None
        variant, _, _ = apply_changes(self.package, changes)
        # The engine's matches of exactly this package (cached, or matched again now).
        result = self.rematch(changes)
        matches = result[0] if result is not None else self.advisor.evaluator.matches(variant)
        evaluation = self.advisor.evaluator.evaluation_of(variant, matches)
        cost = sum(trade.cost for trade in chosen) + (self.cost(extra) if extra else 0.0)
        return CounterProposal(variant, evaluation, tuple(chosen), cost)

    def failing(
        self, targets: Sequence[Match], changes: tuple[PackageChange, ...]
    ) -> list[Match] | None:
        """What still fires of `targets`, and the BLOCK/REVIEW `changes` introduced, in the
        changed package's indices; None once the budget is spent."""
        result = self.rematch(changes)
        if result is None:
            return None
        found, index_map = result
        identity = index_map is self._identity
        before = self.matches if identity else moved(self.matches, index_map)
        introduced = {m for m in found - before if self.rules[m[0]].severity in _HEAVY}
        still = found.intersection(targets) if identity else moved(targets, index_map) & found
        return sorted(still | introduced)

    def mend(
        self, targets: Sequence[Match], changes: tuple[PackageChange, ...]
    ) -> tuple[PackageChange, ...] | None:
        """Extra changes that make `changes` clear every target without a new BLOCK or
        REVIEW (trades chosen one by one can undo each other: a renewal rate set to the
        rate before another trade lowered the rate); None when two rounds do not do it."""
        extra: tuple[PackageChange, ...] = ()
        for _ in range(2):
            combined = _merge(changes, extra)
            failing = self.failing(targets, combined)
            if failing is None:
                return None
            if not failing:
                return extra
            variant, index_map, _ = apply_changes(self.package, combined)
            original_index = {new: old for old, new in index_map.items()}
            for broken in failing:
                repair = self.first_repair(variant, broken)
                if repair is None or any(
                    c.op is not ChangeOp.ADD_TERM and c.term_index not in original_index
                    for c in repair
                ):
                    return None
                extra = _merge(
                    extra,
                    tuple(
                        c
                        if c.op is ChangeOp.ADD_TERM
                        else dataclasses.replace(c, term_index=original_index[c.term_index])
                        for c in repair
                    ),
                )
        return extra if self.failing(targets, _merge(changes, extra)) == [] else None

    def greedy(
        self, targets: Sequence[tuple[Match, list[Trade]]]
    ) -> tuple[list[Trade], tuple[PackageChange, ...]]:
        chosen: list[Trade] = []
        changes: tuple[PackageChange, ...] = ()
        current = self.weight(self.matches)
        for _, trades in targets:
            for trade in trades:
                trial = _merge(changes, trade.changes)
                result = self.rematch(trial)
                if result is None:
                    return chosen, changes
                weight = self.weight(result[0])
                if weight < current:
                    chosen.append(trade)
                    changes, current = trial, weight
                    break
        return chosen, changes

    def weight(self, matches: Iterable[Match]) -> tuple[int, int]:
        severities = [self.rules[rule].severity for rule, _ in matches]
        return severities.count(Severity.BLOCK), severities.count(Severity.REVIEW)

    def giveaways(self) -> tuple[Trade, ...]:
        heavy = any(self.rules[rule].severity in _HEAVY for rule, _ in self.matches)
        if not heavy:
            return ()
        present = {term.type for term in self.package.terms}
        offers: list[Trade] = []
        before = self.weight(self.matches)
        for giveaway in self.advisor.plan.giveaways:
            if giveaway.term_type in present:
                continue
            result = self.rematch(giveaway.unverified.changes, giveaway.key)
            verified = result is not None and self.weight(result[0]) <= before
            offers.append(giveaway.verified if verified else giveaway.unverified)
        return tuple(offers)


# --- leaf repairs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FieldEdit:
    """One field a leaf repair sets (or removes)."""

    name: str
    value: Value = None
    remove: bool = False


def _leaves(condition: Condition) -> list[Condition]:
    match condition:
        case AllOf(items) | AnyOf(items):
            return [leaf for item in items for leaf in _leaves(item)]
        case Not(item):
            return _leaves(item)
    return [condition]


def _field_of(condition: Condition) -> str:
    match condition:
        case Compare(Field(_, name), _, _) | Compare(Count(_, name), _, _):
            return name
        case (
            OneOf(Field(_, name), _)
            | NoneOf(Field(_, name), _)
            | Present(Field(_, name))
            | Absent(Field(_, name))
        ):
            return name
    return ""


def _holds_plain(condition: Condition, fields: Mapping[str, Value]) -> bool:
    return isinstance(condition, Present) and fields.get(condition.field.name) not in (None, "", ())


def _leaf_values(
    condition: Condition, fields: Mapping[str, Value], spec: FieldSpec | None
) -> list[_FieldEdit] | str:
    """The field values that make one leaf hold, as options; a text when a person must
    supply them; [] when nothing automatic or personal fits (a context test)."""
    match condition:
        case Compare(Field("term", name), operator, Const(value)) if operator in ("==", "<=", ">="):
            return [_FieldEdit(name, value)]
        case Compare(Field("term", name), "<", Const(value)) if isinstance(
            value, int
        ) and not isinstance(value, bool):
            return [_FieldEdit(name, value - 1)]
        case Compare(Field("term", name), ">", Const(value)) if isinstance(
            value, int
        ) and not isinstance(value, bool):
            return [_FieldEdit(name, value + 1)]
        case Compare(Field("term", name), "!=", Const(value)) if isinstance(value, bool):
            return [_FieldEdit(name, not value)]
        case Compare(Field("term", name), "!=", Const(value)) if spec is not None and spec.values:
            return [_FieldEdit(name, other) for other in spec.values if other != value][:2]
        case Compare(Field("term", name), operator, Field("term", other)) if operator in (
            "==",
            "<=",
            ">=",
        ):
            source = fields.get(other)
            return [_FieldEdit(name, source)] if source is not None else f"supply `{other}`"
        case Compare(Count("term", name), operator, Const(value)):
            direction = "at most" if operator in ("<", "<=") else "at least"
            return f"list {direction} {value} `{name}`"
        case OneOf(Field("term", name), values):
            return [_FieldEdit(name, item.value) for item in values]
        case NoneOf(Field("term", name), values) if spec is not None and spec.values:
            excluded = {item.value for item in values}
            return [_FieldEdit(name, other) for other in spec.values if other not in excluded][:2]
        case Absent(Field("term", name)):
            return [_FieldEdit(name, remove=True)]
        case Present(Field("term", name)):
            if spec is not None and spec.type == "bool":
                return [_FieldEdit(name, True)]
            return f"supply `{name}`"
        case Compare(Field("context", _), _, _) | OneOf(Field("context", _), _):
            return []
    field = _field_of(condition)
    return f"supply `{field}`" if field else []


def _key(changes: Iterable[PackageChange]) -> tuple[object, ...]:
    """A hashable key for a set of changes (term fields are dicts)."""
    return tuple(_change_key(change) for change in changes)


def _change_key(change: PackageChange) -> tuple[object, ...]:
    value = change.value
    frozen = value if isinstance(value, _SCALARS) else _frozen(value)
    if change.term is None:
        return (change.op, change.term_index, change.field, frozen, "", None)
    term = change.term
    return (change.op, change.term_index, change.field, frozen, term.type, _frozen(term.fields))


_SCALARS = (str, int, float, type(None))


def _frozen(value: object) -> object:
    if isinstance(value, _SCALARS):  # first: the ABC check of Mapping is slow
        return value
    if isinstance(value, tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, Mapping):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    return value


def _merge(*change_sets: Iterable[PackageChange]) -> tuple[PackageChange, ...]:
    """All changes, the later winning where two set the same field of the same term."""
    merged: dict[tuple[object, ...], PackageChange] = {}
    for changes in change_sets:
        for change in changes:
            if change.op is ChangeOp.ADD_TERM and change.term is not None:
                key: tuple[object, ...] = ("add", change.term.type)
            elif change.op is ChangeOp.REMOVE_TERM:
                key = ("remove", change.term_index)
            else:
                key = ("field", change.term_index, change.field)
            merged.pop(key, None)
            merged[key] = change
    return tuple(merged.values())


# --- conditional language ------------------------------------------------------------------


def _label(name: str) -> str:
    return name.replace("_", " ")


def _value_text(value: Value, spec: FieldSpec | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _label(value)
    if isinstance(value, tuple):
        return ", ".join(_value_text(item, None) for item in value)
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, float) and spec is not None and spec.type == "percent":
        return f"{value:.0%}" if value * 100 == int(value * 100) else f"{value:.1%}"
    unit = f" {spec.unit}" if spec is not None and spec.unit else ""
    return f"{value}{unit}"


def _describe_term(term_type: str, fields: Mapping[str, Value]) -> str:
    parts = ", ".join(f"{_label(k)} {_value_text(v, None)}" for k, v in fields.items())
    label = _label(term_type)
    article = "an" if label[0] in "aeiou" else "a"
    return f"{article} {label} term" + (f" ({parts})" if parts else "")


def _phrase(change: PackageChange, package: TermPackage, vocabulary: Vocabulary) -> str:
    if change.op is ChangeOp.ADD_TERM and change.term is not None:
        return _describe_term(change.term.type, change.term.fields)
    term = package.terms[change.term_index]
    if change.op is ChangeOp.REMOVE_TERM:
        return f"no {_label(term.type)} term"
    if change.op is ChangeOp.REMOVE_FIELD:
        return f"no {_label(change.field)}"
    spec = vocabulary.field(term.type, change.field)
    before = term.fields.get(change.field)
    text = _value_text(change.value, spec)
    if isinstance(change.value, bool):
        return f"{_label(change.field)}: {text}"
    if _is_number(before) and _is_number(change.value):
        verb = "limited to" if change.value < before else "raised to"  # type: ignore[operator]
        return f"{_label(change.field)} {verb} {text}"
    return f"{_label(change.field)} set to {text}"


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _summary(
    plan: _RulePlan,
    term_index: int,
    package: TermPackage,
    candidate: _Candidate,
    *,
    changes: Sequence[PackageChange],
    vocabulary: Vocabulary,
) -> str:
    """ "If <what the partner asks>, then <what we need>", from the rule and the changes."""
    term = package.terms[term_index] if term_index >= 0 else None
    wanted = ""
    if term is not None and plan.asked:
        specs = spec_term.fields if (spec_term := vocabulary.term(term.type)) else {}
        asked = [
            f"{_label(name)} {_value_text(term.fields[name], specs.get(name))}"
            for name in plan.asked
            if name in term.fields
        ]
        if asked:
            wanted = f"If you need {_label(term.type)} with {' and '.join(asked)}"
    if not wanted:
        subject = _label(term.type) if term is not None else "the deal"
        wanted = f"If {subject} is to hold" if term is not None else "If the deal is to go ahead"
    if candidate.needs_input:
        return f"{wanted}, then we need you to {candidate.needs_input}"
    phrases = [_phrase(change, package, vocabulary) for change in changes]
    needed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if candidate.step_back:
        return f"{wanted.replace('If you need', 'Instead of', 1)}, we can agree to {needed}"
    return f"{wanted}, then we need {needed}"
