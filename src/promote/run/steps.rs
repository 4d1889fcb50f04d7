//! What each step of the promotion does, and the record it journals.

use super::records::detail;
use super::*;

/// What a step works with.
struct Ctx<'a> {
    j: &'a mut Journal,
    primary: &'a mut Node,
    replica: &'a mut Node,
    inv: &'a Inventory,
    svc: &'a Service<'a>,
    opts: &'a Options,
    st: &'a PromoteState,
    out: &'a mut Output,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_step(
    name: &str,
    j: &mut Journal,
    primary: &mut Node,
    replica: &mut Node,
    inv: &Inventory,
    svc: &Service<'_>,
    opts: &Options,
    st: &PromoteState,
    out: &mut Output,
) -> Result<Value> {
    let step = Step::parse(name).ok_or_else(|| Error::Unexpected(format!("unknown step {name} in the journal")))?;
    let mut c = Ctx { j, primary, replica, inv, svc, opts, st, out };
    let c = &mut c;
    match step {
        Step::Preflight => step_preflight(c).await,
        Step::ZeroLag => step_zero_lag(c).await,
        Step::Owner => step_owner(c).await,
        Step::Reads => step_reads(c).await,
        Step::Compare => step_compare(c).await,
        Step::Ready => step_ready(c).await,
        Step::Fence => step_fence(c).await,
        Step::CatchUp => step_catch_up(c).await,
        Step::Promote => step_promote(c).await,
        Step::Writes => step_writes(c).await,
        Step::Archive => step_archive(c).await,
    }
}

async fn step_preflight(c: &mut Ctx<'_>) -> Result<Value> {
    let input = preflight::Input { policy: c.svc.policy, service: c.svc.name, today: c.svc.today, lock_wait_max: Duration::from_secs(10) };
    let checks = preflight::run(c.primary, c.replica, c.inv, &input).await?;
    for check in &checks {
        c.out.status(&format!("  {:?} {}: {}", check.status, check.name, check.detail));
    }
    if let Some(spec) = &c.opts.sync_back {
        let sb = crate::syncback::check::promotion(&mut c.replica.server, spec, &c.svc.tables, c.out).await?;
        if crate::syncback::check::refuses(&sb) {
            let why = crate::syncback::check::failures(&sb);
            return Err(Error::Refused(format!("sync-back could not start after the promotion ({why}); nothing was changed")));
        }
    }
    if preflight::refuses(&checks) {
        return Err(Error::Refused("preflight refused (the failed checks are above); nothing was changed".into()));
    }
    Ok(detail(&PreflightRecord { checks }))
}

async fn step_zero_lag(c: &mut Ctx<'_>) -> Result<Value> {
    let deadline = Instant::now() + c.opts.lag_timeout;
    loop {
        let pos = c.primary.position().await?;
        if c.replica.wait_for(&pos, Duration::from_secs(1)).await? {
            return Ok(detail(&ZeroLagRecord { position: pos }));
        }
        check(c.opts)?;
        if Instant::now() >= deadline {
            return Err(Error::ReplicaNotReady {
                what: format!("the replica did not reach {pos} within {:?}", c.opts.lag_timeout),
                todo: "let it catch up (or raise --lag-timeout), then `privfence promote resume`",
            });
        }
        c.out.progress(&format!("waiting for the replica to contain {pos} ..."));
    }
}

async fn step_owner(c: &mut Ctx<'_>) -> Result<Value> {
    let r = account::ensure(c.j, c.primary, c.replica, &c.svc.owners).await?;
    let snapshot = crate::engine::snapshot::read(&mut c.primary.server, &c.svc.owners).await?;
    Ok(detail(&OwnerRecord { owners: c.svc.owners.clone(), on_replica: r, snapshot }))
}

async fn step_reads(c: &mut Ctx<'_>) -> Result<Value> {
    match &c.opts.hooks.reads {
        Some(cmd) => hook(cmd, c.replica, c.opts.hook_timeout, c.out).await?,
        None if c.opts.yes => c.out.status("  no reads hook: the service's reads are assumed moved (--yes)"),
        None if c.out.is_live() && c.out.ask("Have the service's reads been moved to the replica") => {}
        None => {
            return Err(Error::NeedsOperator {
                what: "the service's reads are still on the primary".into(),
                todo: "move them to the replica, then resume with --yes (or give --reads-hook)",
            })
        }
    }
    Ok(detail(&ReadsRecord { hook: c.opts.hooks.reads.clone() }))
}

async fn step_compare(c: &mut Ctx<'_>) -> Result<Value> {
    let mut say = |m: &str| c.out.progress(m);
    let cmp = compare::compare(c.primary, c.replica, &c.svc.tables, c.opts.chunk_rows, &mut say).await?;
    c.out.status(&format!("  {} chunk(s) equal, {} dirty", cmp.equal_chunks, cmp.dirty.len()));
    Ok(detail::<CompareRecord>(&cmp))
}

async fn step_ready(c: &mut Ctx<'_>) -> Result<Value> {
    let mut waited = 0u64;
    loop {
        let go = match (&c.opts.hooks.go_file, &c.opts.hooks.go_command) {
            (Some(f), _) if f.exists() => true,
            (_, Some(cmd)) => {
                let go = crate::engine::command::Command::shell(cmd).stdout(crate::engine::command::Stdout::Null);
                let status = go.run(c.opts.hook_timeout).await.map_err(|e| Error::External {
                    what: format!("the go command failed: {e}"),
                    todo: "fix it (--hook-timeout bounds it), then `privfence promote resume`",
                })?;
                status.success()
            }
            (Some(_), None) => false,
            (None, None) if c.opts.yes => true,
            (None, None) if c.out.is_live() => c.out.ask("Ready: the fence stops the service's writes. Go"),
            (None, None) => {
                return Err(Error::NeedsOperator {
                    what: "ready: nothing says when to go".into(),
                    todo: "give --go-file or --go-command, or --yes to go on at once",
                })
            }
        };
        if go {
            return Ok(detail(&ReadyRecord { waited_s: waited }));
        }
        check(c.opts)?;
        let pos = c.primary.position().await?;
        let behind = !c.replica.wait_for(&pos, Duration::from_millis(200)).await?;
        c.out.progress(&format!("ready: waiting for the go ({waited} s; replica {})", if behind { "lagging" } else { "caught up" }));
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
    }
}

async fn step_fence(c: &mut Ctx<'_>) -> Result<Value> {
    let (f, r) = fence::fence(c.j, c.primary, c.inv, &c.svc.owners, &c.svc.tables, c.opts.lock_wait).await;
    r?;
    c.out.status(&format!("  fenced: GTID set {} (drained in {} ms)", f.gtid, f.drained_in.as_millis()));
    Ok(detail::<FenceRecord>(&f))
}

async fn step_catch_up(c: &mut Ctx<'_>) -> Result<Value> {
    let gtid = c.st.record::<fence::Fenced>("fence")?.gtid;
    let waited = tokio::select! {
        w = c.replica.wait_for(&gtid, c.opts.lag_timeout) => w?,
        _ = c.opts.interrupts.wait_beyond(0) => return Err(Error::Interrupted(c.opts.interrupts.reason())),
    };
    if !waited {
        return Err(Error::ReplicaNotReady {
            what: format!("the replica did not reach the fence's GTID set {gtid} in time"),
            todo: "let it catch up (or raise --lag-timeout), then `privfence promote resume` (or `promote abort`)",
        });
    }
    let earlier: compare::Comparison = c.st.record("compare")?;
    let d = compare::delta(c.primary, c.replica, &earlier).await?;
    if !d.is_clean() {
        return Err(Error::Mismatch {
            what: format!("the tables differ after the fence: {} chunk(s)", d.differing.len() + d.differing_replica.len()),
            todo: "something besides replication wrote to one of them: `privfence promote abort` takes the fence down",
        });
    }
    // Where sync-back starts: the new server's binary log while the service is fenced
    // (nothing of the service's can be after it yet, nothing before it is missing).
    // Without a binary log there (or the privilege to read its position) there is no
    // sync-back; the promotion itself does not need it.
    let sync_back_from = match crate::syncback::check::current_position(&mut c.replica.server).await {
        Ok(p) => Some(p),
        Err(e) => {
            c.out.warn(&format!("no sync-back start position recorded: {e}"));
            None
        }
    };
    Ok(detail(&CatchUpRecord { delta: d, sync_back_from }))
}

async fn step_promote(c: &mut Ctx<'_>) -> Result<Value> {
    let snapshot = c.st.record::<OwnerRecord>("owner")?.snapshot;
    let mut s = c.replica.server.another().await?;
    let rinv = crate::inventory::grants::read(&mut s).await?;
    s.close().await;
    let mut rinv = rinv;
    rinv.objects = c.inv.objects.clone();
    let svc_def = c.svc.policy.service(c.svc.name).ok_or_else(|| Error::JournalState {
        what: format!("no service {:?} in the policy", c.svc.name),
        todo: "use the policy the promotion started with (--policy)",
    })?;
    let exempt = |a: &AccountName| svc_def.exemption(a, c.svc.today).is_some();
    let keep = promotion::Keep { owners: &c.svc.owners, exempt: &exempt, tool: &c.svc.tool };
    let p = promotion::promote(c.j, c.replica, &rinv, &c.svc.tables, &keep, &snapshot).await?;
    Ok(detail::<PromoteRecord>(&p))
}

async fn step_writes(c: &mut Ctx<'_>) -> Result<Value> {
    if let Some(cmd) = &c.opts.hooks.writes {
        hook(cmd, c.replica, c.opts.hook_timeout, c.out).await?;
    }
    // A write through the service's own account that changes nothing: it needs the
    // privileges and a writable server, and inserts no row.
    let mut smoked = Vec::new();
    if let Some(spec) = &c.opts.smoke_as {
        // Journaled like every statement, although it changes no row.
        let mut node = crate::engine::node::Node::connect(spec, "smoke").await?;
        for t in &c.svc.tables {
            let sql = format!("INSERT INTO {} SELECT * FROM {} WHERE FALSE", t.sql(), t.sql());
            exec::run(c.j, &mut node, Phase::Promote, Some("smoke-write"), &sql, &[]).await.map_err(|e| Error::External {
                what: format!("the smoke write through {} failed on the new server: {e}", spec.target()),
                todo: "check the service account's grants there, then `privfence promote resume`",
            })?;
            smoked.push(t.to_string());
        }
        node.server.close().await;
        c.out.status(&format!("  smoke write through {} on the new server: ok", spec.target()));
    }
    Ok(detail(&WritesRecord { hook: c.opts.hooks.writes.clone(), smoke_write: smoked }))
}

async fn step_archive(c: &mut Ctx<'_>) -> Result<Value> {
    let mut renamed = Vec::new();
    for t in &c.svc.tables {
        let archived = TableName::new(&t.schema, format!("_{}_pf_archived", t.name));
        let sql = format!("RENAME TABLE {} TO {}", t.sql(), archived.sql());
        // Already renamed (a resume): the source no longer exists.
        exec::run(c.j, c.primary, Phase::Promote, Some("archive"), &sql, &[1146]).await?;
        renamed.push(archived);
    }
    // Nobody should write the archived tables: watch their write counters for a while.
    let before = archive_writes(c.primary, &renamed).await;
    tokio::time::sleep(c.opts.archive_watch).await;
    let after = archive_writes(c.primary, &renamed).await;
    let written: Vec<String> = renamed
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| a > b)
        .map(|(t, (b, a))| format!("{t}: {} write(s)", a - b))
        .collect();
    for w in &written {
        c.out.warn(&format!("the archived table was written on the old primary: {w}"));
    }
    let archived = renamed.iter().map(|t| t.to_string()).collect();
    let r = ArchiveRecord { archived, written_meanwhile: written, watched_ms: c.opts.archive_watch.as_millis() as u64 };
    Ok(detail(&r))
}
