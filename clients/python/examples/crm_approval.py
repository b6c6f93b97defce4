"""Ask termdesk whether a deal's terms can be approved, as a CRM does on its approval step.

When a CRM should call this:
  - when a rep submits an opportunity for approval: evaluate the proposed terms, show the
    decision and the reasons, and route the approval to the required approvers;
  - again on each revision of the terms (a counter-offer, a changed rate or duration):
    every revision gets its own decision, and the approval follows the latest one.
Store the printed decision id on the opportunity (one per evaluation): it is the key of
the server's decision log, so an auditor can see which ruleset version decided what.

Usage:
    python crm_approval.py [PACKAGE.json] [--target HOST:PORT] [--ruleset NAME]
    python crm_approval.py --build        # a package built in code from CRM fields

Without PACKAGE it reads the repository's seed-net-15 example, or builds one when this
file was copied out of the repository.

Exit codes: 0 a decision was made (whatever it is), 3 the package does not fit the
vocabulary (every field problem is printed), 4 unknown ruleset, 1 any other failure
(server down after the retries, deadline, server error), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from termdesk_client import (
    Evaluation,
    InvalidPackageError,
    RulesetNotFoundError,
    Term,
    TermdeskClient,
    TermdeskError,
    TermPackage,
    as_package,
)

EXIT_BAD_PACKAGE = 3
EXIT_UNKNOWN_RULESET = 4
EXIT_FAILED = 1
# The shipped example, when this file sits at clients/python/examples/ in the repository.
DEFAULT_PACKAGE = (
    Path(__file__).resolve().parents[3]
    / "rulesets"
    / "partner-alliance"
    / "examples"
    / "seed-net-15.json"
)


def build_package() -> TermPackage:
    """A package built from an opportunity's fields, as a CRM integration would map them."""
    opportunity_id, partner_type, net_days = "OPP-0042", "referral", 15
    return TermPackage(
        deal_id=opportunity_id,
        context={"partner_type": partner_type},
        terms=(
            Term(type="payment_terms", fields={"net_days": net_days, "verification": "none"}),
            Term(type="confidentiality", fields={"mutual": True, "years": 3}),
        ),
    )


def read_package(path: Path) -> TermPackage:
    """The package in a JSON file; InvalidPackageError when it is not the shape of one."""
    return as_package(json.loads(path.read_text(encoding="utf-8")))


def show(evaluation: Evaluation, deal_id: str) -> None:
    """Prints what the approver (and the CRM record) needs from the evaluation."""
    ruleset = evaluation.ruleset
    print(f"deal {deal_id}: {evaluation.decision} (ruleset {ruleset.name} v{ruleset.version})")
    for violation in evaluation.violations:
        where = violation.term_type or "the deal"
        if violation.term_index >= 0:
            where += f"[{violation.term_index}]"
        if violation.field:
            where += f".{violation.field}"
        print(f"  {violation.severity} {violation.rule_id} on {where}: {violation.message}")
        print(f"    why: {violation.rationale}")
        print(f"    approver: {violation.approver}")
    approvers = ", ".join(evaluation.required_approvers) or "none"
    print(f"required approvers: {approvers}")
    print(f"decision id (store on the opportunity for audit): {evaluation.decision_id}")


def report_invalid(error: InvalidPackageError) -> int:
    """Prints every field problem, with its suggested fix, for the rep to correct."""
    print(f"the package cannot be evaluated: {error.message}", file=sys.stderr)
    for violation in error.field_violations:
        help_text = f" (help: {violation.help})" if violation.help else ""
        print(f"  {violation.field}: {violation.description}{help_text}", file=sys.stderr)
    return EXIT_BAD_PACKAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "package", nargs="?", type=Path, help="package JSON file (default: seed-net-15)"
    )
    parser.add_argument("--build", action="store_true", help="build the package in code")
    parser.add_argument("--target", default="localhost:50051", help="termdesk server")
    parser.add_argument("--ruleset", default="", help="ruleset name (default: the server's)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    args = parser.parse_args(argv)

    path: Path | None = args.package
    if path is None and not args.build and DEFAULT_PACKAGE.is_file():
        path = DEFAULT_PACKAGE
    try:
        package = read_package(path) if path is not None else build_package()
    except (OSError, ValueError) as error:  # unreadable, or not JSON
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return EXIT_BAD_PACKAGE
    except InvalidPackageError as error:
        return report_invalid(error)

    with TermdeskClient(args.target, timeout=args.timeout) as client:
        try:
            evaluation = client.evaluate(package, ruleset=args.ruleset)
        except InvalidPackageError as error:
            return report_invalid(error)
        except RulesetNotFoundError as error:
            print(f"unknown ruleset: {error.message}", file=sys.stderr)
            return EXIT_UNKNOWN_RULESET
        except TermdeskError as error:
            print(f"termdesk failed: {error}", file=sys.stderr)
            return EXIT_FAILED
    show(evaluation, package.deal_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
