//! What privfence's own account may do, read from an inventory (pure): the capabilities `doctor`
//! lists, and the ones without which `inventory` and `access` would answer too cleanly.

use crate::access::index::Index;
use crate::error::Result;
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::{Flavour, Inventory, TableName};
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
    let global = global_at_login(&ix, me);
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

/// The global privileges `me` holds on a new connection: its own, its default roles' (through
/// the roles they hold), and everyone's (PUBLIC, mandatory roles). `ALL PRIVILEGES` is expanded.
pub fn global_at_login(ix: &Index<'_>, me: &crate::model::AccountName) -> PrivSet {
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
    global
}
