//! Accounts that could write the replica despite `read_only`, and managed services.

use super::*;

/// Global privileges that let an account write while `read_only=ON`. MariaDB 10.11.19: only
/// READ_ONLY ADMIN (SUPER alone was refused, error 1290); older MariaDB gave it with SUPER.
/// MySQL: SUPER or CONNECTION_ADMIN, unless `super_read_only=ON` (seen on 9.7.4).
pub(super) fn bypass_privileges(inv: &Inventory) -> &'static [&'static str] {
    match inv.server.flavour {
        Flavour::MySql => &["SUPER", "CONNECTION_ADMIN"],
        Flavour::MariaDb if inv.server.version < crate::db::Version::new(10, 11, 0) => &["READ_ONLY ADMIN", "SUPER"],
        Flavour::MariaDb => &["READ_ONLY ADMIN"],
    }
}

/// Login accounts holding any of `privs` globally (own grants, roles, PUBLIC, mandatory roles),
/// with the ones they hold and whether they are locked.
pub(super) fn holders(inv: &Inventory, privs: &[&str]) -> Vec<(AccountName, Vec<String>, bool)> {
    let ix = Index::new(inv);
    let everyone: Vec<AccountName> = ix.everyone().into_iter().map(|(a, _)| a).collect();
    let mut out = Vec::new();
    for a in inv.login_accounts() {
        let mut set = ix.global_all(&a.name);
        for chain in ix.role_chains(&a.name) {
            set.extend(ix.global_all(chain.last().expect("role chains are not empty")));
        }
        for e in &everyone {
            set.extend(ix.global_all(e));
        }
        let hit: Vec<String> = privs.iter().filter(|p| set.iter().any(|s| s.as_str() == **p)).map(|p| p.to_string()).collect();
        if !hit.is_empty() {
            out.push((a.name.clone(), hit, a.locked));
        }
    }
    out
}

pub(super) fn read_only_bypass(rinv: &Inventory, svc: &Service, rv: &Vars) -> Check {
    let privs = bypass_privileges(rinv);
    let all = holders(rinv, privs);
    let show = |v: &[&(AccountName, Vec<String>, bool)]| list(v.iter().map(|(a, p, _)| format!("{} ({})", a.sql(), p.join(", "))), 8);
    let (locked, open): (Vec<_>, Vec<_>) = all.iter().partition(|(_, _, locked)| *locked);
    let owners: Vec<_> = open.iter().copied().filter(|(a, _, _)| svc.is_owner(a)).collect();
    let mysql = rinv.server.flavour == Flavour::MySql;
    let state = if mysql {
        format!("read_only={}, super_read_only={}", on(rv.read_only), on(rv.super_read_only))
    } else {
        format!("read_only={}", on(rv.read_only))
    };
    let locked_note = if locked.is_empty() { String::new() } else { format!("; locked, so not counted: {}", show(&locked)) };
    let mut f = Vec::new();
    if !owners.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "the service's own account(s) {} can write the replica before promotion and would hold {} on the new server; \
                 revoke that from them (mysql-facts §6)",
                show(&owners),
                privs.join("/")
            ),
        ));
    }
    let guarded = mysql && rv.super_read_only;
    if !rv.read_only {
        f.push((
            Status::Warn,
            format!(
                "the replica is writable ({state}): any account with write grants can create errant transactions; SET GLOBAL read_only=ON"
            ),
        ));
    } else if !open.is_empty() && !guarded {
        f.push((
            Status::Warn,
            format!(
                "{state} on the replica, but these accounts can write it anyway ({}): {}{}",
                privs.join(" or "),
                show(&open),
                if mysql {
                    "; SET GLOBAL super_read_only=ON stops them"
                } else {
                    "; make sure they do not write there until the promotion"
                }
            ),
        ));
    }
    if f.is_empty() {
        let detail = if guarded && !open.is_empty() {
            format!("{state} on the replica; super_read_only stops even {}{locked_note}", show(&open))
        } else {
            format!("{state} on the replica; no account can bypass it ({}){locked_note}", privs.join(", "))
        };
        return Check::new(READ_ONLY_BYPASS, Status::Pass, detail);
    }
    let mut c = Check::from_findings(READ_ONLY_BYPASS, f, "");
    c.detail.push_str(&locked_note);
    c
}

pub(super) fn on(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

pub(super) fn managed(p: &Server, r: &Server) -> Check {
    let found: Vec<String> =
        [("primary", p), ("replica", r)].iter().filter_map(|(who, s)| s.info.managed.as_ref().map(|m| format!("{who}: {m}"))).collect();
    if found.is_empty() {
        return Check::new(
            MANAGED,
            Status::Pass,
            "self-managed servers (no provider recognised in @@version, @@version_comment, @@basedir): privfence runs every step",
        );
    }
    let provider = p.info.managed.as_deref().or(r.info.managed.as_deref()).unwrap_or("");
    let how = match provider {
        "Amazon RDS" => "`aws rds promote-read-replica` for the promotion; read_only through the DB parameter group; CALL mysql.rds_kill(id) for sessions",
        "Amazon Aurora" => {
            "`aws rds promote-read-replica-db-cluster`, or CALL mysql.rds_stop_replication and mysql.rds_reset_external_source \
             for a binlog replica; read_only through the cluster parameter group; CALL mysql.rds_kill(id)"
        }
        "Azure Database" => "`az mysql flexible-server replica stop-replication` for the promotion; read_only through server parameters",
        "Google Cloud SQL" => "`gcloud sql instances promote-replica` for the promotion; read_only through database flags",
        _ => "the provider's promotion API; read_only through its parameter settings",
    };
    Check::new(
        MANAGED,
        Status::Warn,
        format!(
            "{}: the provider's API must do these steps instead of SQL: stop and reset replication (promotion), turn read_only \
             (and super_read_only) off on the new server, persist settings (no SET PERSIST), kill other accounts' sessions; {how}. \
             privfence still fences, waits, compares and moves grants",
            found.join(", ")
        ),
    )
}
