"""Tests of the `termdesk` command, run as a user runs it: the console script in a subprocess.

Exit codes are part of the interface (cli.py's docstring): `eval` answers 0 APPROVE,
10 NEEDS_APPROVAL, 20 REJECT, 3 bad input, 4 unknown or broken ruleset, 2 usage error;
`check` and `test` answer 1 on an error or a failing case.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from termdesk.catalog import DEFAULT_RULESET, RULESET_FILE
from termdesk.paths import shipped_rulesets_dir

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("termdesk")
TERMDESK = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "termdesk.cli"]

Run = subprocess.CompletedProcess[str]

CONFIDENTIALITY: dict[str, Any] = {
    "type": "confidentiality",
    "fields": {"mutual": True, "years": 3},
}

# The seed examples of DOMAIN.md section 3, as a client would send them.
SEEDS: dict[str, dict[str, Any]] = {
    "uk-healthcare": {
        "deal_id": "seed-uk-healthcare",
        "context": {"partner_type": "reseller", "segment": "mid-market healthcare", "region": "UK"},
        "terms": [
            {
                "type": "exclusivity",
                "fields": {
                    "segments": ["mid-market healthcare"],
                    "geographies": ["UK"],
                    "duration_months": 6,
                    "min_verified_activations": 25,
                    "commitment_period_months": 6,
                    "reversion": "non_exclusive",
                    "audit_rights": True,
                },
            },
            CONFIDENTIALITY,
        ],
    },
    "open-exclusivity": {
        "deal_id": "seed-open-exclusivity",
        "context": {"partner_type": "reseller"},
        "terms": [
            {
                "type": "exclusivity",
                "fields": {
                    "segments": ["mid-market healthcare"],
                    "geographies": ["UK"],
                    "audit_rights": True,
                },
            },
            CONFIDENTIALITY,
        ],
    },
    "net-15": {
        "deal_id": "seed-net-15",
        "context": {"partner_type": "referral"},
        "terms": [
            {"type": "payment_terms", "fields": {"net_days": 15, "verification": "none"}},
            CONFIDENTIALITY,
        ],
    },
    "net-15-verified": {
        "deal_id": "seed-net-15-verified",
        "context": {"partner_type": "referral"},
        "terms": [
            {
                "type": "payment_terms",
                "fields": {"net_days": 15, "verification": "invoice_collection"},
            },
            CONFIDENTIALITY,
        ],
    },
}

MISSPELLED = {
    "deal_id": "typo",
    "terms": [{"type": "payment_terms", "fields": {"net_day": 15}}, CONFIDENTIALITY],
}

# A one-rule ruleset whose only test case expects the wrong decision.
FAILING_RULESET = """\
name: demo
parameters:
  max_exclusivity_months: 12
rules:
  - id: exclusivity.time-limit
    term: exclusivity
    require: duration_months <= $max_exclusivity_months
    severity: BLOCK
    approver: legal
    message: "exclusivity lasts {duration_months} months"
    rationale: exclusivity must end on its own
tests:
  - name: a two-year exclusivity passes
    package:
      deal_id: t1
      terms:
        - {type: exclusivity, fields: {duration_months: 24}}
    expect:
      decision: APPROVE
"""


def termdesk(*args: str, cwd: Path = REPO, stdin: str | None = None) -> Run:
    """Runs the console script; never raises on a non-zero exit."""
    return subprocess.run(
        [*TERMDESK, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def no_traceback(run: Run) -> None:
    """Fails when the command printed a Python traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    assert "Traceback" not in run.stdout, run.stdout


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Writes `data` as JSON to `path` and returns the path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """`termdesk eval FILE` on each seed, run side by side from outside the repository."""
    directory = tmp_path_factory.mktemp("seeds")
    files = {name: write_json(directory / f"{name}.json", seed) for name, seed in SEEDS.items()}
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        futures = {
            name: pool.submit(termdesk, "eval", path.name, cwd=directory)
            for name, path in files.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture
def demo_rulesets(tmp_path: Path) -> Path:
    """A rulesets directory holding `demo/ruleset.yaml`, whose one test case fails."""
    (tmp_path / "rulesets" / "demo").mkdir(parents=True)
    (tmp_path / "rulesets" / "demo" / RULESET_FILE).write_text(FAILING_RULESET, encoding="utf-8")
    return tmp_path / "rulesets"


class TestCheck:
    def test_shipped_rulesets_check_clean(self) -> None:
        """`termdesk check rulesets/` exits 0 and says each ruleset is ok."""
        run = termdesk("check", "rulesets/")
        no_traceback(run)
        assert 0 == run.returncode, run.stdout
        lines = run.stdout.splitlines()
        assert f"rulesets/{DEFAULT_RULESET}/{RULESET_FILE}: ok" in lines
        assert re.fullmatch(r"\d+ ruleset\(s\) checked, 0 error\(s\)", lines[-1])

    def test_check_without_paths_finds_the_shipped_rulesets(self, tmp_path: Path) -> None:
        """Run from another directory, `termdesk check` still checks the shipped rulesets."""
        run = termdesk("check", cwd=tmp_path)
        no_traceback(run)
        assert 0 == run.returncode, run.stdout
        shipped = shipped_rulesets_dir() / DEFAULT_RULESET / RULESET_FILE
        assert f"{shipped}: ok" in run.stdout.splitlines()

    def test_check_of_a_missing_file_says_so(self, tmp_path: Path) -> None:
        """`termdesk check` on a path that does not exist names it and exits 1."""
        run = termdesk("check", str(tmp_path / "nope.yaml"))
        no_traceback(run)
        assert 1 == run.returncode
        assert "nope.yaml" in run.stdout + run.stderr


class TestTest:
    def test_shipped_rulesets_pass_their_cases(self) -> None:
        """`termdesk test rulesets/` ends with `N passed, 0 failed` and exits 0."""
        run = termdesk("test", "rulesets/")
        no_traceback(run)
        assert 0 == run.returncode, run.stdout
        assert re.fullmatch(r"\d+ passed, 0 failed", run.stdout.splitlines()[-1])
        assert not [line for line in run.stdout.splitlines() if line.startswith("FAIL ")]

    def test_failing_case_is_reported_with_expected_and_actual(self, demo_rulesets: Path) -> None:
        """A failing case prints `FAIL file:line: name`, expected vs actual, and exits 1."""
        run = termdesk("test", "rulesets", cwd=demo_rulesets.parent)
        no_traceback(run)
        assert 1 == run.returncode
        lines = run.stdout.splitlines()
        case_line = FAILING_RULESET.splitlines().index("  - name: a two-year exclusivity passes")
        path = f"rulesets/demo/{RULESET_FILE}"
        assert f"FAIL {path}:{case_line + 1}: a two-year exclusivity passes" in lines
        assert "  decision: expected APPROVE, got REJECT" in lines
        assert "0 passed, 1 failed" == lines[-1]


class TestEvalSeeds:
    @pytest.mark.parametrize(
        ("seed", "decision", "code"),
        [
            ("uk-healthcare", "DECISION_APPROVE", 0),
            ("net-15", "DECISION_NEEDS_APPROVAL", 10),
            ("net-15-verified", "DECISION_APPROVE", 0),
            ("open-exclusivity", "DECISION_REJECT", 20),
        ],
    )
    def test_exit_code_tells_the_decision(
        self, seed_runs: dict[str, Run], seed: str, decision: str, code: int
    ) -> None:
        """`termdesk eval` prints the decision and exits 0, 10 or 20 accordingly."""
        run = seed_runs[seed]
        no_traceback(run)
        assert code == run.returncode, run.stderr
        answer = json.loads(run.stdout)
        assert decision == answer["decision"]
        assert SEEDS[seed]["deal_id"] == answer["deal_id"]

    def test_needs_approval_prints_the_contract(self, seed_runs: dict[str, Run]) -> None:
        """The net-15 answer has the violation, the approvers and the ruleset, contract-named."""
        full = json.loads(seed_runs["net-15"].stdout)
        advice_keys = ("trades", "giveaways", "counter_proposal", "counter_proposal_outcome")
        answer = {key: value for key, value in full.items() if key not in advice_keys}
        shipped = (shipped_rulesets_dir() / DEFAULT_RULESET / RULESET_FILE).read_bytes()
        assert {
            "deal_id": "seed-net-15",
            "decision": "DECISION_NEEDS_APPROVAL",
            "violations": [
                {
                    "rule_id": "payment.fast-payment-trade",
                    "severity": "SEVERITY_REVIEW",
                    "approver": "finance",
                    "term_type": "payment_terms",
                    "term_index": 0,
                    "field": "net_days",
                    "actual": 15,
                    "message": answer["violations"][0]["message"],
                    "rationale": answer["violations"][0]["rationale"],
                }
            ],
            "required_approvers": ["finance"],
            "ruleset": {
                "name": DEFAULT_RULESET,
                "version": answer["ruleset"]["version"],
                "digest": "sha256:" + hashlib.sha256(shipped).hexdigest(),
            },
        } == answer
        assert "net-15" in answer["violations"][0]["message"]
        assert isinstance(answer["ruleset"]["version"], int)

    def test_trades_and_counter_proposal_are_printed(self, seed_runs: dict[str, Run]) -> None:
        """The net-15 answer offers verified trades and a counter-proposal that approves."""
        answer = json.loads(seed_runs["net-15"].stdout)
        first = answer["trades"][0]
        assert (first["rule_id"], first["verified"]) == ("payment.fast-payment-trade", True)
        assert first["summary"].startswith("If you need payment terms with net days 15 days")
        assert answer["counter_proposal_outcome"]["decision"] == "DECISION_APPROVE"
        proposal_terms = answer["counter_proposal"]["terms"]
        assert proposal_terms[0]["fields"]["verification"] == "invoice_collection"
        assert {g["changes"][0]["term"]["type"] for g in answer["giveaways"]} == {
            "co_marketing",
            "enablement",
        }

    def test_reject_lists_block_violations(self, seed_runs: dict[str, Run]) -> None:
        """The open exclusivity answer lists its three BLOCKs, with no approver to sign."""
        answer = json.loads(seed_runs["open-exclusivity"].stdout)
        assert [
            ("exclusivity.time-limit", "SEVERITY_BLOCK", 0, None),
            ("exclusivity.performance-commitment", "SEVERITY_BLOCK", 0, None),
            ("exclusivity.automatic-reversion", "SEVERITY_BLOCK", 0, None),
        ] == [
            (v["rule_id"], v["severity"], v["term_index"], v["actual"])
            for v in answer["violations"]
        ]
        assert [] == answer["required_approvers"]

    def test_approve_has_no_violation(self, seed_runs: dict[str, Run]) -> None:
        """The UK healthcare exclusivity answer has no violation and no approver."""
        answer = json.loads(seed_runs["uk-healthcare"].stdout)
        assert ([], []) == (answer["violations"], answer["required_approvers"])
        assert answer["ruleset"]["digest"].startswith("sha256:")


class TestEvalInput:
    def test_dash_reads_the_package_from_stdin(self, tmp_path: Path) -> None:
        """`eval -` reads standard input; `python -m termdesk.cli` is the same command."""
        run = subprocess.run(
            [sys.executable, "-m", "termdesk.cli", "eval", "-"],
            cwd=tmp_path,
            input=json.dumps(SEEDS["net-15"]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        no_traceback(run)
        assert 10 == run.returncode, run.stderr
        assert "DECISION_NEEDS_APPROVAL" == json.loads(run.stdout)["decision"]

    def test_misspelled_field_exits_3_with_a_suggestion(self) -> None:
        """A package with a misspelled field names its path and a did-you-mean, exits 3."""
        run = termdesk("eval", "-", stdin=json.dumps(MISSPELLED))
        no_traceback(run)
        assert 3 == run.returncode
        assert "" == run.stdout
        assert "terms[0].fields.net_day" in run.stderr
        assert "did you mean `net_days`?" in run.stderr

    def test_non_json_exits_3(self) -> None:
        """Input that is not JSON exits 3 with a message and no traceback."""
        run = termdesk("eval", "-", stdin="deal_id: not json")
        no_traceback(run)
        assert 3 == run.returncode
        assert "" == run.stdout
        assert "not JSON" in run.stderr

    def test_no_package_is_a_usage_error(self) -> None:
        """`termdesk eval` with neither a package nor --batch exits 2."""
        run = termdesk("eval")
        no_traceback(run)
        assert 2 == run.returncode
        assert "--batch" in run.stderr

    def test_missing_package_file_is_bad_input(self, tmp_path: Path) -> None:
        """A package file that does not exist is named, with no traceback."""
        run = termdesk("eval", str(tmp_path / "nope.json"))
        no_traceback(run)
        assert run.returncode in (2, 3)
        assert "nope.json" in run.stderr

    def test_deeply_nested_json_is_bad_input(self) -> None:
        """A pathologically nested JSON document is bad input (3), not a crash."""
        run = termdesk("eval", "-", stdin="[" * 100_000 + "]" * 100_000)
        no_traceback(run)
        assert 3 == run.returncode


class TestEvalRulesets:
    def test_unknown_ruleset_exits_4_naming_the_known_ones(self) -> None:
        """`--ruleset` naming no ruleset exits 4 and lists the rulesets there are."""
        run = termdesk("eval", "--ruleset", "partner-aliance", "-", stdin="{}")
        no_traceback(run)
        assert 4 == run.returncode
        assert "partner-aliance" in run.stderr
        assert re.search(rf"known rulesets: .*{DEFAULT_RULESET}", run.stderr)

    def test_rulesets_directory_is_used(self, demo_rulesets: Path) -> None:
        """`--rulesets DIR --ruleset NAME` evaluates with that ruleset."""
        package = {
            "deal_id": "d",
            "terms": [{"type": "exclusivity", "fields": {"duration_months": 24}}],
        }
        run = termdesk(
            "eval",
            "--rulesets",
            str(demo_rulesets),
            "--ruleset",
            "demo",
            "-",
            stdin=json.dumps(package),
        )
        no_traceback(run)
        assert 20 == run.returncode, run.stderr
        answer = json.loads(run.stdout)
        assert ["exclusivity.time-limit"] == [v["rule_id"] for v in answer["violations"]]
        assert "demo" == answer["ruleset"]["name"]

    def test_broken_ruleset_exits_4_with_its_diagnostics(self, demo_rulesets: Path) -> None:
        """A ruleset with errors exits 4 and prints its diagnostics, no traceback."""
        path = demo_rulesets / "demo" / RULESET_FILE
        path.write_text(FAILING_RULESET.replace("approver: legal", "approver: legl"), "utf-8")
        run = termdesk(
            "eval", "--rulesets", str(demo_rulesets), "--ruleset", "demo", "-", stdin="{}"
        )
        no_traceback(run)
        assert 4 == run.returncode
        assert "unknown_approver" in run.stderr
        assert "did you mean `legal`?" in run.stderr


class TestEvalBatch:
    def test_batch_answers_each_line_in_order(self, tmp_path: Path) -> None:
        """A good, a bad and a non-JSON line give three JSON lines in order; exit 3."""
        batch = tmp_path / "batch.jsonl"
        batch.write_text(
            json.dumps(SEEDS["net-15"]) + "\n" + json.dumps(MISSPELLED) + "\n{not json\n",
            encoding="utf-8",
        )
        run = termdesk("eval", "--batch", str(batch), cwd=tmp_path)
        no_traceback(run)
        assert 3 == run.returncode
        good, bad, broken = (json.loads(line) for line in run.stdout.splitlines())
        assert ("seed-net-15", "DECISION_NEEDS_APPROVAL") == (good["deal_id"], good["decision"])
        assert {
            "line": 2,
            "error": {
                "code": "invalid_package",
                "field_violations": [
                    {
                        "field": "terms[0].fields.net_day",
                        "code": "unknown_field",
                        "description": bad["error"]["field_violations"][0]["description"],
                        "help": "did you mean `net_days`?",
                    }
                ],
            },
        } == bad
        assert (3, "not_json") == (broken["line"], broken["error"]["code"])
        assert broken["error"]["message"]

    def test_batch_of_good_lines_exits_0_and_skips_blank_lines(self, tmp_path: Path) -> None:
        """Every line evaluated: exit 0, one answer per package, blank lines skipped."""
        batch = tmp_path / "batch.jsonl"
        batch.write_text(
            json.dumps(SEEDS["uk-healthcare"]) + "\n\n" + json.dumps(SEEDS["net-15"]) + "\n",
            encoding="utf-8",
        )
        run = termdesk("eval", "--batch", str(batch))
        no_traceback(run)
        assert 0 == run.returncode, run.stdout
        assert [
            ("seed-uk-healthcare", "DECISION_APPROVE"),
            ("seed-net-15", "DECISION_NEEDS_APPROVAL"),
        ] == [
            (answer["deal_id"], answer["decision"])
            for answer in map(json.loads, run.stdout.splitlines())
        ]
