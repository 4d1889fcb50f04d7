//! `verify` and `backfill` renderers: a terminal summary, the versioned JSON document
//! (docs/formats.md) and the Markdown report written to `reports/`. Keys only, never row data.

use crate::verify::backfill::BackfillReport;
use crate::verify::VerifyReport;
use serde::Serialize;

/// Version of the `verify` and `backfill` JSON documents.
pub const FORMAT: u32 = 1;

#[derive(Serialize)]
struct Doc<'a, T: Serialize> {
    format: u32,
    kind: &'a str,
    result: &'a str,
    #[serde(flatten)]
    report: &'a T,
}

fn verdict(v: &VerifyReport) -> &'static str {
    if v.is_equal() {
        "equal"
    } else {
        "differ"
    }
}

/// The JSON document of a verify.
pub fn verify_json(v: &VerifyReport) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&Doc { format: FORMAT, kind: "verify", result: verdict(v), report: v })? + "\n")
}

/// The JSON document of a backfill.
pub fn backfill_json(b: &BackfillReport) -> anyhow::Result<String> {
    let result = match &b.verify {
        Some(v) => verdict(v),
        None => "dry_run",
    };
    Ok(serde_json::to_string_pretty(&Doc { format: FORMAT, kind: "backfill", result, report: b })? + "\n")
}

/// A terminal (and Markdown) summary of a verify.
pub fn verify_text(v: &VerifyReport) -> String {
    let mut s = format!(
        "verify: {} ({} tables, {} chunks, {} equal, {} re-checked; {} rows on the source, {} on the target; {} ms)\n",
        if v.is_equal() { "equal" } else { "DIFFER" },
        v.tables.len(),
        v.chunks,
        v.equal_chunks,
        v.rechecked,
        v.rows_source,
        v.rows_target,
        v.took_ms
    );
    for r in &v.ranges {
        s.push_str(&format!(
            "  range {}: {} keys differ ({} rows on the source, {} on the target)\n",
            r.source.describe(),
            r.keys,
            r.source.rows,
            r.target.rows
        ));
    }
    for k in &v.keys {
        s.push_str(&format!("  key {} ({}): {:?}\n", k.table, k.key.join(", "), k.kind));
    }
    if v.keys_not_listed > 0 {
        s.push_str(&format!("  ... and {} more keys\n", v.keys_not_listed));
    }
    s
}

/// A terminal summary of a backfill.
pub fn backfill_text(b: &BackfillReport) -> String {
    let mut s = format!(
        "backfill: {} chunks ({} acknowledged by earlier runs), {} rows read, {} copied, {} already there, {} tombstoned, {} retries, {} ms\n",
        b.chunks, b.chunks_before, b.rows_read, b.inserted, b.present, b.tombstoned, b.retries, b.took_ms
    );
    if let Some(v) = &b.verify {
        s.push_str(&verify_text(v));
    }
    s
}

/// A Prometheus text file for `--prom-file`.
pub fn verify_prom(v: &VerifyReport) -> String {
    format!(
        "# HELP privfence_verify_equal 1 when the last verify found the servers equal.\n# TYPE privfence_verify_equal gauge\nprivfence_verify_equal {}\n\
         # TYPE privfence_verify_differing_keys gauge\nprivfence_verify_differing_keys {}\n",
        u8::from(v.is_equal()),
        v.keys.len() + v.keys_not_listed
    )
}
