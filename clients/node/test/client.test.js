// Calls a running termdesk: the one at TERMDESK_ADDRESS (CI's pytest starts it), or else a
// `termdesk serve --port 0` started here from PATH (a developer's activated venv).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import readline from "node:readline";
import { after, before, test } from "node:test";

import { TermdeskClient, TermdeskError } from "../src/client.js";

const CONFIDENTIALITY = { type: "confidentiality", fields: { mutual: true, years: 3 } };
const NET_15 = { type: "payment_terms", fields: { net_days: 15, verification: "none" } };

let server = null;
let client = null;

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn("termdesk", ["serve", "--host", "127.0.0.1", "--port", "0"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    server.on("error", reject);
    readline.createInterface({ input: server.stdout }).on("line", (line) => {
      const record = JSON.parse(line);
      if (record.event === "listening") resolve(`127.0.0.1:${record.port}`);
    });
  });
}

before(async () => {
  const address = process.env.TERMDESK_ADDRESS || (await startServer());
  client = new TermdeskClient(address, { timeoutMs: 10000 });
});

after(() => {
  client?.close();
  server?.kill("SIGTERM");
});

test("a package gets its decision and the violation behind it", async () => {
  const answer = await client.evaluate({ deal_id: "node-net15", terms: [CONFIDENTIALITY, NET_15] });
  assert.equal(answer.decision, "DECISION_NEEDS_APPROVAL");
  assert.equal(answer.violations.length, 1);
  const [violation] = answer.violations;
  assert.equal(violation.rule_id, "payment.fast-payment-trade");
  assert.equal(violation.severity, "SEVERITY_REVIEW");
  assert.equal(violation.term_index, 1);
  assert.equal(violation.field, "net_days");
  assert.equal(violation.actual, 15);
  assert.deepEqual(answer.required_approvers, ["finance"]);
  assert.equal(answer.ruleset.name, "partner-alliance");
  assert.ok(answer.decision_id);
});

test("a bad package is INVALID_ARGUMENT naming the field and the fix", async () => {
  const typo = { deal_id: "node-typo", terms: [{ type: "exclusivity", fields: { duration_month: 12 } }] };
  await assert.rejects(client.evaluate(typo), (error) => {
    assert.ok(error instanceof TermdeskError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_PACKAGE");
    assert.equal(error.fieldViolations.length, 1);
    const [violation] = error.fieldViolations;
    assert.equal(violation.field, "package.terms[0].fields.duration_month");
    assert.equal(violation.reason, "unknown_field");
    assert.match(violation.description, /duration_months/);
    return true;
  });
});
