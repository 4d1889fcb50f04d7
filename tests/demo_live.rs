//! The README's first command, `privfence demo`, on both flavours: the three apps' session ends
//! as the seed says, the isolation is finished to "isolation complete", and the promotion moves
//! the media tables while every acknowledged write of the service lands on the new server; then
//! sync-back brings the new server's writes to the old copy and a revert gives the service back
//! (every acknowledged write on the old primary).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

use std::process::Command;

fn demo(flavour: &str) {
    let reports = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(["demo", "--flavour", flavour, "--seed", "1", "--window", "3s", "--reports"])
        .arg(reports.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let text = format!("{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{flavour}: {text}");
    for want in ["RESTORED", "PASSED", "INCONCLUSIVE", "isolation complete", "point of no return passed"] {
        assert!(out.contains(want), "{flavour}: {want:?} in the demo's output:\n{out}");
    }
    let line = out.lines().find(|l| l.contains("write(s) acknowledged")).unwrap_or_else(|| panic!("{flavour}: {out}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    // "11 step(s) done, ...; A write(s) acknowledged, B of them on the new server; ... N ms"
    assert!(nums.len() >= 3 && nums[1] > 0 && nums[1] == nums[2], "{flavour}: every acknowledged write on the new server: {line}");
    // The way back: writes on the new server arrive on the old copy, then the revert; every
    // write acknowledged meanwhile is on the old primary.
    let line = out.lines().find(|l| l.starts_with("sync-back: ")).unwrap_or_else(|| panic!("{flavour}: sync-back shown: {out}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    assert!(nums.first().is_some_and(|n| *n > 0), "{flavour}: writes arrived on the old copy: {line}");
    let line = out.lines().find(|l| l.starts_with("revert done")).unwrap_or_else(|| panic!("{flavour}: the revert shown: {out}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    // "revert done: fence to end N ms; A write(s) acknowledged during the way back, B of them on the old primary"
    assert!(nums.len() >= 3 && nums[1] > 0 && nums[1] == nums[2], "{flavour}: every acknowledged write on the old primary: {line}");
    assert!(reports.path().join(format!("demo-session-{flavour}.md")).exists());
}

#[test]
fn the_demo_runs_the_whole_method_mariadb() {
    demo("mariadb");
}

#[test]
fn the_demo_runs_the_whole_method_mysql() {
    demo("mysql");
}
