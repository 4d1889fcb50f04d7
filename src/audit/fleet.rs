//! Running audits: one server or a fleet (`--servers FILE`), concurrently with a bound. A server
//! that cannot be reached, or read completely, is an error for that server, not for the run.

use super::{divergence, findings, ServerAudit};
use crate::db::{ConnectInput, Server, SslMode};
use crate::policy::Policy;
use chrono::NaiveDate;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A server to audit, with the replicas to compare it with.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub input: ConnectInput,
    /// Replicas as `host:port`, reached with the same credentials.
    pub replicas: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServersFile {
    server: Vec<ServerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: String,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    socket: Option<PathBuf>,
    url: Option<String>,
    defaults_file: Option<PathBuf>,
    ssl_mode: Option<String>,
    ssl_ca: Option<PathBuf>,
    #[serde(default)]
    replicas: Vec<String>,
}

/// Reads a servers file (docs/policies.md, "Fleets"). Passwords come from each entry's
/// `defaults_file` or the environment, never from this file.
pub fn load_servers(path: &Path) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read the servers file {}: {e}", path.display()))?;
    let file: ServersFile = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map(|s| crate::policy::position(&text, s.start)).unwrap_or((1, 1));
        anyhow::anyhow!("{}:{line}:{col}: {}", path.display(), e.message().trim())
    })?;
    let mut out: Vec<Target> = Vec::new();
    for s in file.server {
        if out.iter().any(|t| t.name == s.name) {
            anyhow::bail!("{}: server name {:?} is used twice", path.display(), s.name);
        }
        let ssl_mode = match &s.ssl_mode {
            Some(m) => Some(
                <SslMode as clap::ValueEnum>::from_str(m, true)
                    .map_err(|_| anyhow::anyhow!("{}: server {:?}: unknown ssl_mode {m:?}", path.display(), s.name))?,
            ),
            None => None,
        };
        let input = ConnectInput {
            host: s.host,
            port: s.port,
            user: s.user,
            socket: s.socket,
            url: s.url,
            defaults_file: s.defaults_file,
            ssl_mode,
            ssl_ca: s.ssl_ca,
            ..Default::default()
        };
        out.push(Target { name: s.name, input, replicas: s.replicas });
    }
    if out.is_empty() {
        anyhow::bail!("{}: no [[server]] entries", path.display());
    }
    Ok(out)
}

/// Audits every target, at most `parallel` at a time; results in the targets' order.
/// `done` is told how many servers are finished, after each one.
pub async fn audit_all(
    targets: Vec<Target>,
    policy: Arc<Policy>,
    today: NaiveDate,
    parallel: usize,
    done: &mut dyn FnMut(usize),
) -> Vec<ServerAudit> {
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        let (sem, policy) = (sem.clone(), policy.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("the semaphore is never closed");
            (i, audit_one(&t, &policy, today).await)
        });
    }
    let mut results: Vec<(usize, ServerAudit)> = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => results.push(x),
            Err(e) => results.push((usize::MAX, failed("?", "?", format!("the audit task failed: {e}")))),
        }
        done(results.len());
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, a)| a).collect()
}

fn failed(name: &str, target: &str, error: String) -> ServerAudit {
    ServerAudit {
        name: name.into(),
        target: target.into(),
        flavour: None,
        version: None,
        error: Some(error),
        findings: vec![],
        warnings: vec![],
        replicas: vec![],
    }
}

/// Audits one server (and compares it with its replicas).
pub async fn audit_one(t: &Target, policy: &Policy, today: NaiveDate) -> ServerAudit {
    let spec = match t.input.resolve(&|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return failed(&t.name, "?", e.to_string()),
    };
    let target = spec.target();
    let mut server = match Server::connect(&spec).await {
        Ok(s) => s,
        Err(e) => return failed(&t.name, &target, e.to_string()),
    };
    let inv = match crate::inventory::take(&mut server).await {
        Ok(i) => i,
        Err(e) => return failed(&t.name, &target, e.to_string()),
    };
    server.close().await;
    let mut audit = ServerAudit {
        name: t.name.clone(),
        target,
        flavour: Some(inv.server.flavour),
        version: Some(inv.server.version_string.clone()),
        error: None,
        findings: vec![],
        warnings: inv.warnings.clone(),
        replicas: vec![],
    };
    let tables: Vec<_> = inv.objects.tables.iter().map(|t| t.name.clone()).collect();
    let (errors, warnings) = policy.check_against(&tables, inv.server.lower_case_table_names != 0);
    audit.warnings.extend(policy.warnings.iter().chain(&warnings).map(|d| d.to_string()));
    if !errors.is_empty() {
        audit.error =
            Some(format!("the policy does not fit this server: {}", errors.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")));
        return audit;
    }
    audit.findings = findings(&inv, policy, today);
    for r in &t.replicas {
        match replica_inventory(&spec, r).await {
            Ok(rinv) => {
                audit.findings.extend(divergence(&inv, &rinv, r));
                audit.replicas.push(r.clone());
                rinv.drop_aside();
            }
            Err(e) => {
                audit.error = Some(format!("replica {r} could not be compared: {e}"));
            }
        }
    }
    inv.drop_aside();
    audit
}

async fn replica_inventory(primary: &crate::db::ConnectSpec, addr: &str) -> anyhow::Result<crate::model::Inventory> {
    let spec = primary.with_address(addr).map_err(|e| anyhow::anyhow!("replica {e}"))?;
    let mut server = Server::connect(&spec).await?;
    let inv = crate::inventory::take(&mut server).await?;
    server.close().await;
    Ok(inv)
}
