// termdesk-client: a small Node.js client of termdesk.v1.TermEvaluator over gRPC.
//
// The stubs are built at run time by @grpc/proto-loader from the repository's protos
// (proto/termdesk/v1), so the client never drifts from the contract. Packages go in and
// answers come out as plain JSON, with the proto field names (`deal_id`, `rule_id`,
// `term_index`), as `termdesk eval` prints them: google.protobuf.Struct and Value are
// converted both ways, enums are their names (`DECISION_NEEDS_APPROVAL`).
// A failed call rejects with a TermdeskError carrying the gRPC status code and, for a bad
// package, one field violation per problem (from the google.rpc.BadRequest detail).

import path from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository's proto/ directory (termdesk/v1 and the vendored google/ protos). */
export const PROTO_DIR = path.resolve(HERE, "..", "..", "..", "proto");

const LOAD_OPTIONS = {
  keepCase: true, // proto field names, as in the JSON of `termdesk eval`
  longs: Number, // ruleset versions are small
  enums: String,
  defaults: true, // a violation at term_index 0 still has term_index
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const loaded = grpc.loadPackageDefinition(
  protoLoader.loadSync("termdesk/v1/termdesk.proto", LOAD_OPTIONS),
);

// google.rpc.Status and its details, to read a failed call's `grpc-status-details-bin`.
const errorProtos = new protobuf.Root();
errorProtos.resolvePath = (_origin, target) =>
  target.startsWith("google/protobuf/") ? target : path.join(PROTO_DIR, target);
errorProtos.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], {
  keepCase: true,
});
const Status = errorProtos.lookupType("google.rpc.Status");
const BadRequest = errorProtos.lookupType("google.rpc.BadRequest");
const ErrorInfo = errorProtos.lookupType("google.rpc.ErrorInfo");

/** A failed call: `code` is the gRPC status code name (`INVALID_ARGUMENT`, `NOT_FOUND`...). */
export class TermdeskError extends Error {
  constructor(code, message, fieldViolations = [], reason = "") {
    super(message);
    this.name = "TermdeskError";
    this.code = code;
    /** [{field, description, reason}] for a package that does not fit the vocabulary. */
    this.fieldViolations = fieldViolations;
    /** google.rpc.ErrorInfo reason, e.g. `INVALID_PACKAGE`; "" without one. */
    this.reason = reason;
  }
}

export class TermdeskClient {
  /**
   * @param {string} address host:port of a termdesk server
   * @param {{credentials?: grpc.ChannelCredentials, timeoutMs?: number}} [options]
   */
  constructor(address, { credentials = grpc.credentials.createInsecure(), timeoutMs = 10000 } = {}) {
    this.timeoutMs = timeoutMs;
    this.stub = new loaded.termdesk.v1.TermEvaluator(address, credentials);
  }

  /**
   * Evaluates one term package (plain JSON, as in rulesets/*\/examples).
   * @param {object} termPackage {deal_id, context, terms: [{type, fields}]}
   * @param {{ruleset?: string, rulesetVersion?: number, explain?: boolean}} [options]
   * @returns {Promise<object>} the EvaluateResponse as JSON
   */
  evaluate(termPackage, { ruleset = "", rulesetVersion = 0, explain = false } = {}) {
    const request = {
      ruleset,
      ruleset_version: rulesetVersion,
      package: packageToProto(termPackage),
      explain,
    };
    return this.#call("Evaluate", request).then(responseToJson);
  }

  /** The vocabulary: term types and fields a package may hold. */
  getVocabulary() {
    return this.#call("GetVocabulary", {});
  }

  close() {
    this.stub.close();
  }

  #call(method, request) {
    const deadline = new Date(Date.now() + this.timeoutMs);
    return new Promise((resolve, reject) => {
      this.stub[method](request, { deadline }, (error, response) => {
        if (error) reject(toTermdeskError(error));
        else resolve(response);
      });
    });
  }
}

// -- JSON <-> google.protobuf.Struct / Value (protobufjs spells the well-known types'
// fields in camelCase whatever `keepCase` says)

export function toValue(value) {
  if (value === null || value === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

export function toStruct(object) {
  return {
    fields: Object.fromEntries(Object.entries(object ?? {}).map(([k, v]) => [k, toValue(v)])),
  };
}

export function fromValue(value) {
  switch (value?.kind) {
    case "numberValue":
      return value.numberValue;
    case "stringValue":
      return value.stringValue;
    case "boolValue":
      return value.boolValue;
    case "listValue":
      return (value.listValue.values ?? []).map(fromValue);
    case "structValue":
      return fromStruct(value.structValue);
    default:
      return null;
  }
}

export function fromStruct(struct) {
  return Object.fromEntries(Object.entries(struct?.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));
}

function packageToProto(termPackage) {
  return {
    deal_id: termPackage.deal_id ?? "",
    context: toStruct(termPackage.context),
    terms: (termPackage.terms ?? []).map((term) => ({
      type: term.type,
      fields: toStruct(term.fields),
    })),
  };
}

function packageToJson(message) {
  return {
    deal_id: message.deal_id,
    context: fromStruct(message.context),
    terms: message.terms.map((term) => ({ type: term.type, fields: fromStruct(term.fields) })),
  };
}

function responseToJson(response) {
  return {
    ...response,
    violations: response.violations.map((v) => ({ ...v, actual: fromValue(v.actual) })),
    trades: response.trades.map((trade) => ({
      ...trade,
      changes: trade.changes.map((change) => ({
        ...change,
        value: fromValue(change.value),
        term: change.term ? { type: change.term.type, fields: fromStruct(change.term.fields) } : null,
      })),
    })),
    counter_proposal: response.counter_proposal ? packageToJson(response.counter_proposal) : null,
    explanations: response.explanations.map((e) => ({ ...e, values: fromStruct(e.values) })),
  };
}

// -- errors: google.rpc.Status from the `grpc-status-details-bin` trailer

function toTermdeskError(error) {
  const code = grpc.status[error.code] ?? "UNKNOWN";
  const [details] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!details) return new TermdeskError(code, error.details ?? error.message);
  const status = Status.decode(details);
  const fieldViolations = [];
  let reason = "";
  for (const any of status.details) {
    const name = any.type_url.split("/").pop();
    if (name === "google.rpc.BadRequest") {
      const badRequest = BadRequest.decode(any.value);
      for (const violation of badRequest.field_violations) {
        fieldViolations.push({
          field: violation.field,
          description: violation.description,
          reason: violation.reason,
        });
      }
    } else if (name === "google.rpc.ErrorInfo") {
      reason = ErrorInfo.decode(any.value).reason;
    }
  }
  return new TermdeskError(code, status.message, fieldViolations, reason);
}
