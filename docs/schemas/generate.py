"""Writes the JSON Schemas (draft 2020-12) of privfence's JSON documents into this folder.
Run `python3 docs/schemas/generate.py` after changing a format; tests validate real output
against the files (tests/readable_live.rs, tests/saved_plan_live.rs)."""
import json, os
D = os.path.dirname(os.path.abspath(__file__))
BASE = "https://privfence.invalid/schemas/"
acct = {"type": "object", "required": ["user", "host"], "properties": {"user": {"type": "string"}, "host": {"type": "string"}}}
table = {"type": "object", "required": ["schema", "name"], "properties": {"schema": {"type": "string"}, "name": {"type": "string"}}}
privs = {"type": "array", "items": {"type": "string", "minLength": 1}}
strs = {"type": "array", "items": {"type": "string"}}
via_kinds = ["global", "schema", "table", "column", "role", "public", "mandatory", "proxy", "definer", "unresolved_definer", "scheduler", "foreign_key"]
via = {"type": "object", "required": ["kind"], "properties": {
    "kind": {"enum": via_kinds},
    "pattern": {"type": "string"}, "wildcard": {"type": "boolean"}, "column": {"type": "string"},
    "chain": {"type": "array"}, "active_at_login": {"type": "boolean"},
    "grant": {"$ref": "#/$defs/via"}, "entry": {"$ref": "#/$defs/via"}, "parent_via": {"$ref": "#/$defs/via"},
    "role": {"$ref": "#/$defs/account"}, "proxied": {"$ref": "#/$defs/account"},
    "definer": {"anyOf": [{"$ref": "#/$defs/account"}, {"type": "null"}]},
    "object_kind": {"type": "string"}, "object": {"type": "string"}, "reason": {"type": "string"},
    "entry_privileges": {"$ref": "#/$defs/privileges"},
    "constraint": {"type": "string"}, "parent": {"$ref": "#/$defs/table"}, "rule": {"type": "string"}},
    "allOf": [
        {"if": {"properties": {"kind": {"const": "schema"}}}, "then": {"required": ["pattern", "wildcard"]}},
        {"if": {"properties": {"kind": {"const": "column"}}}, "then": {"required": ["column"]}},
        {"if": {"properties": {"kind": {"const": "role"}}}, "then": {"required": ["chain", "active_at_login", "grant"]}},
        {"if": {"properties": {"kind": {"enum": ["public", "proxy", "mandatory"]}}}, "then": {"required": ["grant"]}},
        {"if": {"properties": {"kind": {"const": "definer"}}}, "then": {"required": ["object_kind", "object", "chain", "entry", "entry_privileges"]}},
        {"if": {"properties": {"kind": {"const": "foreign_key"}}}, "then": {"required": ["constraint", "parent", "rule", "parent_via"]}}]}
defs = {"account": acct, "table": table, "privileges": privs, "via": via}
def doc(name, title, props, required, extra_defs=None):
    d = dict(defs)
    if extra_defs: d.update(extra_defs)
    s = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE + name, "title": title,
         "type": "object", "required": required, "properties": props, "$defs": d}
    open(os.path.join(D, name), "w").write(json.dumps(s, indent=2, ensure_ascii=False) + "\n")
def arr(item): return {"type": "array", "items": item}
def obj(req, props): return {"type": "object", "required": req, "properties": props}
ref = lambda n: {"$ref": "#/$defs/" + n}
nullable = lambda x: {"anyOf": [x, {"type": "null"}]}
fmt1 = {"const": 1}
ts = {"type": "string", "format": "date-time"}
server_info = obj(["flavour", "version", "version_string", "lower_case_table_names"], {
    "flavour": {"enum": ["mysql", "mariadb"]}, "version": obj(["major", "minor", "patch"], {k: {"type": "integer"} for k in ["major", "minor", "patch"]}),
    "version_string": {"type": "string"}, "version_comment": {"type": "string"}, "managed": nullable({"type": "string"}),
    "lower_case_table_names": {"type": "integer"}, "partial_revokes": {"type": "boolean"}})
grant_object = obj(["level"], {"level": {"enum": ["global", "schema", "table", "column", "routine"]}})
doc("inventory.json", "privfence inventory --format json", {
    "format": fmt1, "server": server_info, "taken_at": ts,
    "accounts": arr(obj(["name", "is_role", "locked"], {"name": ref("account"), "is_role": {"type": "boolean"}, "locked": {"type": "boolean"}, "plugin": nullable({"type": "string"}), "has_password": {"type": "boolean"}})),
    "grants": arr(obj(["grantee", "object", "privileges", "grant_option"], {"grantee": ref("account"), "object": grant_object, "privileges": ref("privileges"), "grant_option": {"type": "boolean"}})),
    "role_grants": arr(obj(["role", "grantee"], {"role": ref("account"), "grantee": ref("account"), "admin": {"type": "boolean"}})),
    "default_roles": {"type": "array"}, "mandatory_roles": arr(ref("account")), "proxies": {"type": "array"}, "partial_revokes": {"type": "array"},
    "levels": {"type": "object"}, "objects": obj(["schemas", "tables"], {"schemas": strs, "tables": arr(obj(["name"], {"name": ref("table"), "is_view": {"type": "boolean"}}))}),
    "warnings": strs, "verify": {"type": "array"}},
    ["format", "server", "accounts", "grants", "objects"])
entry = obj(["account", "table", "privileges", "via", "locked"], {"account": ref("account"), "table": ref("table"), "privileges": ref("privileges"), "via": ref("via"), "locked": {"type": "boolean"}})
doc("access.json", "privfence access --format json", {
    "format": fmt1, "tables": arr(ref("table")), "entries": arr(entry),
    "escalations": arr(obj(["account", "capability", "detail"], {"account": ref("account"), "capability": {"enum": ["grant_option", "create_user", "super", "set_user_id", "file", "role_admin", "grant_tables_write", "proxy_any"]}, "detail": {"type": "string"}})),
    "shadowing": arr(obj(["anonymous", "shadowed", "detail"], {"anonymous": ref("account"), "shadowed": ref("account"), "detail": {"type": "string"}}))},
    ["format", "tables", "entries", "escalations", "shadowing"])
doc("access-summary.json", "privfence access --summary --format json", {
    "format": fmt1, "kind": {"const": "access_summary"}, "tables": arr(ref("table")),
    "accounts": arr(obj(["account", "locked", "tables", "privileges", "paths", "escalations"], {"account": ref("account"), "locked": {"type": "boolean"}, "tables": {"type": "integer", "minimum": 0}, "privileges": ref("privileges"), "paths": strs, "escalations": strs}))},
    ["format", "kind", "tables", "accounts"])
finding = obj(["kind", "service", "account", "table", "privileges", "via", "detail"], {
    "kind": {"enum": ["unexpected_access", "anonymous_access", "uncovered_table", "expired_exemption", "missing_owner", "escalation", "replica_divergence"]},
    "service": {"type": "string"}, "account": nullable(ref("account")), "table": nullable(ref("table")), "privileges": ref("privileges"), "via": nullable(ref("via")), "detail": {"type": "string"}})
doc("audit.json", "privfence audit --format json (also reports/audit-TIME.json)", {
    "format": fmt1, "generated_at": ts, "policy": strs,
    "servers": arr(obj(["name", "target", "error", "findings", "warnings", "replicas"], {"name": {"type": "string"}, "target": {"type": "string"}, "flavour": nullable({"enum": ["mysql", "mariadb"]}), "version": nullable({"type": "string"}), "error": nullable({"type": "string"}), "findings": arr(ref("finding")), "warnings": strs, "replicas": strs})),
    "baseline": obj(["baseline", "baseline_generated_at", "appeared", "disappeared"], {"baseline": {"type": "string"}, "baseline_generated_at": ts, "appeared": {"type": "array"}, "disappeared": {"type": "array"}}),
    "exit_code": {"enum": [0, 1, 2]}},
    ["format", "generated_at", "policy", "servers", "exit_code"], {"finding": finding})
doc("audit-summary.json", "privfence audit --summary --format json", {
    "format": fmt1, "kind": {"const": "audit_summary"}, "generated_at": ts, "exit_code": {"enum": [0, 1, 2]},
    "servers": arr(obj(["name", "target", "error", "accounts"], {"name": {"type": "string"}, "target": {"type": "string"}, "error": nullable({"type": "string"}),
        "accounts": arr(obj(["account", "findings", "kinds", "services", "tables", "privileges", "paths"], {"account": nullable(ref("account")), "findings": {"type": "integer", "minimum": 1}, "kinds": {"type": "object", "additionalProperties": {"type": "integer"}}, "services": strs, "tables": {"type": "integer"}, "privileges": ref("privileges"), "paths": strs}))}))},
    ["format", "kind", "generated_at", "exit_code", "servers"])
step = obj(["id", "account", "kind", "forward", "inverse", "why"], {"id": {"type": "string"}, "account": ref("account"), "kind": {"enum": ["grant", "revoke"]}, "forward": {"type": "string"}, "inverse": {"type": "string"}, "why": {"type": "string"}})
change = obj(["account", "detail"], {"account": ref("account"), "detail": {"type": "string"}})
plan_props = {"format": fmt1, "service": {"type": "string"}, "accounts": arr(ref("account")), "tables": arr(ref("table")),
    "fingerprint": {"type": "string", "pattern": "^fnv1a64:[0-9a-f]{16}$"}, "steps": arr(ref("step")), "changes": arr(ref("change")), "warnings": strs,
    "alternatives": arr(obj(["name", "proposed", "description", "steps", "changes"], {"name": {"type": "string"}, "proposed": {"type": "boolean"}, "description": {"type": "string"}, "steps": arr(ref("step")), "changes": arr(ref("change"))}))}
plan_req = ["format", "service", "accounts", "tables", "fingerprint", "steps", "changes", "warnings", "alternatives"]
doc("plan.json", "privfence plan --format json", dict(plan_props, forward=strs, inverse=strs, grantor_problems=strs), plan_req + ["forward", "inverse", "grantor_problems"], {"step": step, "change": change})
doc("saved-plan.json", "privfence plan --out FILE (read by session start --plan FILE)", {
    "format": fmt1, "kind": {"const": "saved_plan"}, "saved_at": ts, "server": {"type": "string"}, "account": {"type": "string"},
    "options": obj(["acknowledge_definer", "include_everyone", "even_if_exempt"], {k: {"type": "boolean"} for k in ["acknowledge_definer", "include_everyone", "even_if_exempt"]}),
    "plan": obj(plan_req, plan_props)}, ["format", "kind", "saved_at", "server", "account", "options", "plan"], {"step": step, "change": change})
doc("doctor.json", "privfence doctor --format json", {
    "server": server_info, "account": ref("account"),
    "capabilities": arr(obj(["name", "needed_by", "status", "detail"], {"name": {"type": "string"}, "needed_by": {"type": "string"}, "status": {"enum": ["ok", "missing", "unknown"]}, "detail": {"type": "string"}})),
    "signals": arr(obj(["name", "available", "detail"], {"name": {"type": "string"}, "available": {"type": "boolean"}, "detail": {"type": "string"}}))},
    ["server", "account", "capabilities", "signals"])
evidence = obj(["source", "span", "blind_spots", "usage", "rows"], {"source": {"type": "string"}, "span": {"type": "string"}, "blind_spots": strs, "usage": {"enum": ["used", "not_seen", "unknown"]}, "rows": strs})
doc("readers.json", "privfence readers --format json", {
    "format": fmt1, "kind": {"const": "readers"}, "tables": arr(ref("table")),
    "accounts": arr(obj(["account", "can_read", "can_write", "usage", "evidence"], {"account": ref("account"), "can_read": {"type": "boolean"}, "can_write": {"type": "boolean"}, "usage": {"enum": ["used", "not_seen", "unknown"]}, "last_activity": nullable({"type": "string"}), "evidence": arr(evidence)}))},
    ["format", "kind", "tables", "accounts"])
ms = nullable({"type": "integer"})
doc("session-report.json", "privfence session status --format json (also reports/session-SERVICE.json)", {
    "format": fmt1, "service": {"type": "string"}, "policy": {"type": "string"}, "created": nullable(ts), "generated": ts, "tables": strs, "servers": strs,
    "turns": arr(obj(["account", "accounts", "status", "statements", "begun"], {"account": {"type": "string"}, "accounts": strs, "status": {"type": "string"}, "reason": nullable({"type": "string"}), "choice_evidence": strs, "verdict_evidence": strs, "activity": {"type": "integer"}, "statements": {"type": "integer"}, "begun": ts, "cut_ms": ms, "watch_ms": ms, "restore_ms": ms, "restore_exact": nullable({"type": "boolean"}), "conflicts": strs, "earlier_verdicts": strs})),
    "remaining": nullable(arr(obj(["account", "tables", "paths", "locked"], {"account": ref("account"), "tables": {"type": "integer"}, "paths": strs, "locked": {"type": "boolean"}}))),
    "isolation_complete": nullable({"type": "boolean"})},
    ["format", "service", "policy", "generated", "tables", "servers", "turns", "remaining", "isolation_complete"])
chunk = obj(["table", "rows", "checksum"], {"table": {}, "lower": {}, "upper": {}, "rows": {"type": "integer"}, "checksum": {}})
verify_props = {"format": fmt1, "kind": {"const": "verify"}, "result": {"enum": ["equal", "differ"]}, "algorithm": {"type": "string"}, "tables": {}, "chunks": {"type": "integer"}, "equal_chunks": {"type": "integer"}, "rechecked": {"type": "integer"}, "rows_source": {"type": "integer"}, "rows_target": {"type": "integer"}, "ranges": {"type": "array"}, "keys": arr(obj(["table", "key", "kind"], {"kind": {"enum": ["missing_on_target", "extra_on_target", "differs"]}, "key": {"type": "array"}})), "keys_not_listed": {"type": "integer"}, "took_ms": {"type": "integer"}}
doc("verify.json", "privfence verify --format json (also reports/verify-SERVICE-TIME.json)", verify_props, ["format", "kind", "result", "chunks", "rows_source", "rows_target", "ranges", "keys", "took_ms"])
doc("backfill.json", "privfence backfill --format json", {
    "format": fmt1, "kind": {"const": "backfill"}, "result": {"enum": ["equal", "differ", "dry_run"]}, "tables": {}, "chunks": {"type": "integer"}, "chunks_before": {"type": "integer"}, "rows_read": {"type": "integer"}, "inserted": {"type": "integer"}, "present": {"type": "integer"}, "tombstoned": {"type": "integer"}, "retries": {"type": "integer"}, "took_ms": {"type": "integer"},
    "verify": nullable(obj(["chunks", "equal_chunks", "rows_source", "rows_target", "ranges", "keys", "took_ms"], verify_props))},
    ["format", "kind", "result", "chunks", "rows_read", "inserted", "took_ms", "verify"])
repl = nullable(obj(["io_running", "sql_running", "last_io_error", "last_sql_error"], {k: {"type": "string"} for k in ["io_running", "sql_running", "last_io_error", "last_sql_error"]}))
doc("sandbox-status.json", "privfence sandbox status --format json", {
    "format": fmt1, "flavour": {"enum": ["mysql", "mariadb"]}, "dir": {"type": "string"},
    "servers": arr(obj(["role", "port", "pid", "up", "version", "read_only", "gtids", "replication", "error"], {
        "role": {"enum": ["primary", "replica"]}, "port": {"type": "integer"}, "pid": {"type": "integer"}, "up": {"type": "boolean"},
        "version": nullable({"type": "string"}), "read_only": nullable({"type": "boolean"}), "gtids": nullable({"type": "string"}),
        "replication": repl, "error": nullable({"type": "string"})}))},
    ["format", "flavour", "dir", "servers"])
doc("failsafe-status.json", "privfence failsafe status --format json", {
    "format": fmt1, "target": {"type": "string"}, "schema": {"type": "boolean"},
    "events": arr(obj(["name", "status"], {"name": {"type": "string"}, "status": {"type": "string"}})),
    "heartbeats": arr(obj(["name", "after_ms", "age_ms"], {"name": {"type": "string"}, "after_ms": {"type": "integer"}, "age_ms": {"type": "integer"}})),
    "fired": arr(obj(["name", "fired_at", "done_at", "errors"], {"name": {"type": "string"}, "fired_at": {"type": "string"}, "done_at": nullable({"type": "string"}), "errors": {"type": "integer"}}))},
    ["format", "target", "schema", "events", "heartbeats", "fired"])
print(sorted(os.listdir(D)))
