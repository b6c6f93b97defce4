"""Plain-Python models of the termdesk.v1 contract: what a caller builds and what it reads.

Every model is a frozen pydantic v2 model named after its proto message; enums are the
proto names without their prefix (`DECISION_NEEDS_APPROVAL` is `"NEEDS_APPROVAL"`,
`SEVERITY_BLOCK` is `"BLOCK"`). Nothing here knows gRPC: `convert` maps these to and
from the generated messages.

JSON values (`context`, term `fields`, a violation's `actual`, an explanation's
`values`) travel as `google.protobuf.Struct`, which has one number type, a double. They
come back exactly as protobuf gives them: every number is a `float`, so a term sent with
`"net_days": 15` is reported with `actual == 15.0` (equal to `15` in Python). Money is
`{"amount": "1500.00", "currency": "USD"}`, its amount a decimal string, never a float.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

__all__ = [
    "BatchError",
    "BatchItem",
    "Change",
    "ChangeOp",
    "CounterProposalOutcome",
    "Decision",
    "Evaluation",
    "FieldInfo",
    "FieldViolation",
    "RevisionStatus",
    "RuleExplanation",
    "RulesetRef",
    "Severity",
    "Term",
    "TermPackage",
    "TermTypeInfo",
    "Trade",
    "TradeSource",
    "Violation",
    "Vocabulary",
]

Decision = Literal["APPROVE", "NEEDS_APPROVAL", "REJECT"]
Severity = Literal["BLOCK", "REVIEW", "WARN"]
ChangeOp = Literal["SET_FIELD", "REMOVE_FIELD", "ADD_TERM", "REMOVE_TERM"]
TradeSource = Literal["RULESET", "REPAIR", "ALTERNATIVE", "GIVEAWAY"]
# How a violation compares with the previous revision; "" when none was sent.
RevisionStatus = Literal["", "NEW", "UNCHANGED", "CHANGED"]


class _Model(BaseModel):
    """Frozen, and strict about unknown keys (a misspelt `term` is an error, not ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Term(_Model):
    """One typed clause of the deal; `fields` are checked against the vocabulary."""

    type: str
    fields: dict[str, JsonValue] = Field(default_factory=dict)


class TermPackage(_Model):
    """One proposed deal: its id, its context (partner_type, segment, ...) and its terms."""

    deal_id: str = ""
    context: dict[str, JsonValue] = Field(default_factory=dict)
    terms: tuple[Term, ...] = ()


class Violation(_Model):
    """One rule the package breaks, with the reason behind it and who may sign it off.

    `term_index` is the term's position in the package as sent, or -1 when the term is
    missing or the rule concerns the deal as a whole.
    """

    rule_id: str
    severity: Severity
    approver: str
    term_type: str
    term_index: int
    field: str
    actual: JsonValue
    message: str
    rationale: str
    revision: RevisionStatus = ""


class Change(_Model):
    """One change to a package (a trade's changes apply together)."""

    op: ChangeOp
    term_index: int = 0
    field: str = ""
    value: JsonValue = None
    term: Term | None = None


class Trade(_Model):
    """A concrete change that would clear a violation."""

    rule_id: str
    summary: str
    changes: tuple[Change, ...] = ()
    verified: bool = False
    cost: float = 0.0
    term_index: int = -1
    source: TradeSource = "RULESET"
    needs_input: str = ""


class RulesetRef(_Model):
    """The ruleset version that decided, by name, version and content digest."""

    name: str
    version: int
    digest: str


class RuleExplanation(_Model):
    """Why a rule did or did not fire on one term (`term_index` -1: on the deal)."""

    rule_id: str
    term_index: int
    violated: bool
    when_held: bool
    require_held: bool
    when: str
    require: str
    values: dict[str, JsonValue] = Field(default_factory=dict)
    note: str = ""


class CounterProposalOutcome(_Model):
    """How the counter-proposal evaluates; `applied_trades` index `Evaluation.trades`."""

    decision: Decision
    violations: tuple[Violation, ...] = ()
    required_approvers: tuple[str, ...] = ()
    applied_trades: tuple[int, ...] = ()
    cost: float = 0.0


class Evaluation(_Model):
    """The answer to one package: the decision, why, and who must approve.

    Store `decision_id` with the deal: the server's decision log is keyed by it.
    """

    decision: Decision
    violations: tuple[Violation, ...] = ()
    trades: tuple[Trade, ...] = ()
    counter_proposal: TermPackage | None = None
    required_approvers: tuple[str, ...] = ()
    ruleset: RulesetRef
    decision_id: str
    explanations: tuple[RuleExplanation, ...] = ()
    giveaways: tuple[Trade, ...] = ()
    counter_proposal_outcome: CounterProposalOutcome | None = None
    resolved_violations: tuple[Violation, ...] = ()
    trades_truncated: bool = False


class FieldViolation(_Model):
    """One problem with a field of a request: path, what is wrong, stable code, a fix.

    `field` is a path from the request root, such as
    `package.terms[0].fields.duration_month`; `reason` a stable code such as
    `unknown_field`; `help` a suggested fix such as "did you mean `duration_months`?".
    """

    field: str
    description: str
    reason: str = ""
    help: str = ""


class BatchError(_Model):
    """Why one package of a batch was not evaluated; `code` is a gRPC status code name."""

    code: str
    message: str
    field_violations: tuple[FieldViolation, ...] = ()


class BatchItem(_Model):
    """One package's outcome in a batch: exactly one of `evaluation` and `error`."""

    index: int
    deal_id: str
    evaluation: Evaluation | None = None
    error: BatchError | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> BatchItem:
        if (self.evaluation is None) == (self.error is None):
            raise ValueError("a batch item holds exactly one of `evaluation` and `error`")
        return self

    @property
    def ok(self) -> bool:
        """Whether the package was evaluated."""
        return self.evaluation is not None


class FieldInfo(_Model):
    """A field a package may hold: type, meaning, unit, allowed values and bounds.

    `type` is one of int, number, percent, bool, text, enum, money, list or object;
    `items` describes the item of a list, `fields` the fields of an object.
    """

    name: str
    type: str
    meaning: str = ""
    unit: str = ""
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    items: FieldInfo | None = None
    fields: tuple[FieldInfo, ...] = ()


class TermTypeInfo(_Model):
    """A term type a package may hold, with its fields."""

    name: str
    meaning: str = ""
    fields: tuple[FieldInfo, ...] = ()


class Vocabulary(_Model):
    """Every context field and term type the server accepts, so a CPQ can build its forms."""

    context_fields: tuple[FieldInfo, ...] = ()
    term_types: tuple[TermTypeInfo, ...] = ()

    def term_type(self, name: str) -> TermTypeInfo:
        """The term type called `name`; KeyError when the server has none."""
        for term_type in self.term_types:
            if term_type.name == name:
                return term_type
        raise KeyError(name)
