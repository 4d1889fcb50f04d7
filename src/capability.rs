//! What privfence's own account may do on a server, per command, and which signal sources the
//! server offers. Behind `privfence doctor`; the same checks guard commands that would
//! otherwise give a misleadingly clean answer.

use crate::access::index::Index;
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::inventory::grants;
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::{Inventory, TableName};
use serde::Serialize;

/// Whether a capability is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Missing,
    /// Could not be determined (for example, the grant tables were unreadable).
    Unknown,
}

/// One thing privfence needs to do, and whether its account may.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub needed_by: &'static str,
    pub status: Status,
    /// The privilege(s) that grant it, and what is missing.
    pub detail: String,
}

/// A source of privilege-error or usage signals.
#[derive(Debug, Clone, Serialize)]
pub struct SignalSource {
    pub name: &'static str,
    pub available: bool,
    pub detail: String,
}

/// The doctor's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Checkup {
    pub format: u32,
    pub server: crate::db::ServerInfo,
    pub account: crate::model::AccountName,
    pub capabilities: Vec<Capability>,
    pub signals: Vec<SignalSource>,
}

impl Checkup {
    pub fn all_ok(&self) -> bool {
        self.capabilities.iter().all(|c| c.status == Status::Ok)
    }
}

fn needs(name: &'static str, needed_by: &'static str, have: &PrivSet, any_of: &[&'static str]) -> Capability {
    let ok = any_of.iter().any(|p| have.contains(&Privilege::known(p)));
    Capability {
        name,
        needed_by,
        status: if ok { Status::Ok } else { Status::Missing },
        detail: if ok {
            format!("has {}", any_of.iter().find(|p| have.contains(&Privilege::known(p))).unwrap())
        } else {
            format!("needs {} on *.*", any_of.join(" or "))
        },
    }
}

/// Examines the connected server.
pub async fn examine(server: &mut Server) -> Result<Checkup> {
    let flavour = server.info.flavour;
    let me = server.current_user.clone();
    let mut caps = Vec::new();
    match grants::read(server).await {
        Ok(inv) => {
            caps.push(Capability {
                name: "read the grant tables",
                needed_by: "inventory, access, audit, plan, session",
                status: Status::Ok,
                detail: "SELECT on mysql.*".into(),
            });
            caps.extend(privilege_capabilities(&inv, &me, flavour));
        }
        Err(e) => {
            caps.push(Capability {
                name: "read the grant tables",
                needed_by: "inventory, access, audit, plan, session",
                status: Status::Missing,
                detail: format!("needs SELECT on mysql.*: {e}"),
            });
        }
    }
    let signals = signal_sources(server).await;
    Ok(Checkup { format: 1, server: server.info.clone(), account: me, capabilities: caps, signals })
}

/// Capabilities `inventory` and `access` cannot do without: without them `information_schema`
/// silently hides tables or object bodies, and the answer would look cleaner than it is.
pub const INVENTORY_NEEDS: &[&str] = &["see every table", "see view definitions", "see routine bodies", "see triggers", "see events"];

/// Checks that privfence's account may see everything an inventory needs.
pub fn require_inventory_capabilities(inv: &Inventory, me: &crate::model::AccountName, target: &str) -> Result<()> {
    let mine = inv.subset_for(me);
    let missing: Vec<Capability> = privilege_capabilities(&mine, me, inv.server.flavour)
        .into_iter()
        .filter(|c| INVENTORY_NEEDS.contains(&c.name) && c.status != Status::Ok)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::error::Error::MissingPrivilege {
        target: target.to_string(),
        account: me.sql(),
        what: missing.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
        needed: missing.iter().map(|c| c.detail.trim_start_matches("needs ").to_string()).collect::<Vec<_>>().join("; "),
        hint: "information_schema silently hides what an account may not see, so the answer would look cleaner than it is. `privfence doctor` lists every capability.".into(),
    })
}

/// Per-capability status of `me` on this inventory's server.
pub fn privilege_capabilities(inv: &Inventory, me: &crate::model::AccountName, flavour: Flavour) -> Vec<Capability> {
    let ix = Index::new(inv);
    let mut global = ix.global_all(me);
    for chain in ix.role_chains(me) {
        if ix.active_at_login(me, chain[0]) {
            global.extend(ix.global_all(chain.last().expect("non-empty")));
        }
    }
    for holder in ix.everyone_at_login() {
        global.extend(ix.global_all(&holder));
        for chain in ix.role_chains(&holder) {
            global.extend(ix.global_all(chain.last().expect("non-empty")));
        }
    }
    let mut caps = vec![needs(
        "see every table",
        "inventory, access (information_schema hides tables without a privilege on them)",
        &global,
        &["SELECT"],
    )];
    caps.push(needs("see view definitions", "inventory, access (definer views)", &global, &["SHOW VIEW"]));
    caps.push(match flavour {
        Flavour::MySql => needs("see routine bodies", "inventory, access (definer routines)", &global, &["SHOW_ROUTINE", "SELECT"]),
        Flavour::MariaDb => {
            let proc = ix.all_privileges(me, &TableName::new("mysql", "proc"));
            let mut c = needs("see routine bodies", "inventory, access (definer routines)", &proc, &["SELECT"]);
            if c.status == Status::Missing {
                c.detail = "needs SELECT on mysql.proc (or on *.*)".into();
            }
            c
        }
    });
    caps.push(needs("see triggers", "inventory, access (triggers writing other tables)", &global, &["TRIGGER"]));
    caps.push(needs("see events", "inventory, access (scheduled events)", &global, &["EVENT"]));
    caps.push(needs("grant and restore privileges", "plan, session, promote", &global, &["GRANT OPTION"]));
    if flavour == Flavour::MySql {
        let system_users = inv.grants.iter().filter(|g| g.privileges.contains(&Privilege::known("SYSTEM_USER"))).count();
        let mut c = needs("change SYSTEM_USER accounts", "session (restores of such accounts)", &global, &["SYSTEM_USER"]);
        if c.status == Status::Missing && system_users == 0 {
            c.status = Status::Ok;
            c.detail = "no account holds SYSTEM_USER".into();
        }
        caps.push(c);
    }
    let kill: &[&'static str] = match flavour {
        Flavour::MySql => &["CONNECTION_ADMIN", "SUPER"],
        Flavour::MariaDb => &["CONNECTION ADMIN", "SUPER"],
    };
    let mut c = needs("end other accounts' sessions (KILL)", "session (making a cut effective), promote (fence)", &global, kill);
    if c.status == Status::Missing && inv.server.managed.is_some() {
        c.detail.push_str("; on a managed service, mysql.rds_kill or the provider's equivalent");
    }
    caps.push(c);
    caps.push(needs("see every session", "session, promote", &global, &["PROCESS"]));
    let ps = ix.all_privileges(me, &TableName::new("performance_schema", "threads"));
    let mut c = needs("read performance_schema", "session (signals), doctor", &ps, &["SELECT"]);
    if c.status == Status::Missing {
        c.detail = "needs SELECT on performance_schema.*".into();
    }
    caps.push(c);
    let repl: &[&'static str] = match flavour {
        Flavour::MySql => &["REPLICATION CLIENT", "SUPER"],
        Flavour::MariaDb => &["SLAVE MONITOR", "BINLOG MONITOR", "SUPER"],
    };
    caps.push(needs("read replication state", "session (replicas), promote, audit --replicas", &global, repl));
    caps
}

async fn signal_sources(server: &mut Server) -> Vec<SignalSource> {
    let mut out = Vec::new();
    let ps: Option<i64> = server.first("reading performance_schema", "SELECT @@GLOBAL.performance_schema").await.ok().flatten();
    out.push(SignalSource {
        name: "performance_schema",
        available: ps == Some(1),
        detail: if ps == Some(1) { "ON".into() } else { "OFF (needs a restart with performance_schema=ON)".into() },
    });
    match server.info.flavour {
        Flavour::MySql => {
            let ok = ps == Some(1);
            out.push(SignalSource {
                name: "events_errors_summary_by_account_by_error",
                available: ok,
                detail: "per-account error counts (1142, 1143, ...)".into(),
            });
            let hist: Option<String> = server
                .first(
                    "reading setup_consumers",
                    "SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'events_statements_history_long'",
                )
                .await
                .ok()
                .flatten();
            out.push(SignalSource {
                name: "events_statements_history_long",
                available: hist.as_deref() == Some("YES"),
                detail: format!("consumer enabled: {}", hist.unwrap_or_else(|| "unknown".into())),
            });
            let el: Option<i64> = server
                .first(
                    "error_log table",
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'error_log'",
                )
                .await
                .ok()
                .flatten();
            out.push(SignalSource {
                name: "performance_schema.error_log",
                available: el == Some(1),
                detail: "the error log over SQL (failed logins)".into(),
            });
        }
        Flavour::MariaDb => {
            let us: Option<i64> = server.first("reading userstat", "SELECT @@GLOBAL.userstat").await.ok().flatten();
            out.push(SignalSource {
                name: "userstat (USER_STATISTICS.ACCESS_DENIED)",
                available: us == Some(1),
                detail: if us == Some(1) {
                    "ON".into()
                } else {
                    "OFF (SET GLOBAL userstat=1; privfence journals it when it turns it on)".into()
                },
            });
            for (name, plugin) in [("sql_errlog plugin", "SQL_ERROR_LOG"), ("server_audit plugin", "SERVER_AUDIT")] {
                let st: Option<String> = server
                    .first(
                        "reading plugins",
                        &format!("SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = '{plugin}'"),
                    )
                    .await
                    .ok()
                    .flatten();
                out.push(SignalSource {
                    name,
                    available: st.as_deref() == Some("ACTIVE"),
                    detail: st.unwrap_or_else(|| "not loaded".into()),
                });
            }
        }
    }
    out
}
