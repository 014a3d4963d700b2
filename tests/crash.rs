//! The crash-safety proof under load: `kill -9` a real scopetrail process at random points,
//! again and again, then let a run finish, and compare with the truth computed from the input
//! and with an uninterrupted run: no row lost, none duplicated, no object overwritten.
//! (tests/export.rs kills it at each named failpoint.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const NOW: &str = "2026-03-09T01:00:00Z";

/// A week of traffic through several hosts, half of it refused; returns the request ids of
/// the refused calls (the truth).
fn load(s: &Setup) -> BTreeSet<String> {
    let hosts = ["api.example.com", "erp.example.net", "hooks.example.org"];
    let mut truth = BTreeSet::new();
    for file in 0..3 {
        let mut lines = Vec::new();
        for i in 0..12_000 {
            let n = file * 12_000 + i;
            let status = if n % 2 == 0 { 403 } else { 200 };
            let rid = format!("f{file}-{i:05}");
            if status == 403 {
                truth.insert(rid.clone());
            }
            lines.push(
                serde_json::json!({
                    "ts": format!("2026-03-0{}T{:02}:{:02}:{:02}Z", 2 + n % 7, 1 + n % 22, n % 60, n % 59),
                    "status": status,
                    "method": "POST",
                    "url": format!("https://{}/v1/orders/{}", hosts[n % 3], n % 977),
                    "client": "app-1",
                    "rid": rid,
                })
                .to_string(),
            );
        }
        s.append(&format!("app-{file}.log"), &lines);
    }
    truth
}

/// xorshift: deterministic delays without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Starts a run and kills it with SIGKILL after `delay`; true if the kill landed (the run
/// was still going).
fn kill_after(s: &Setup, delay: Duration) -> bool {
    let mut child = bin()
        .arg("run")
        .arg("--config")
        .arg(s.config())
        .args(["--now", NOW])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(delay);
    let landed = child.try_wait().expect("try_wait").is_none();
    if landed {
        child.kill().expect("SIGKILL");
    }
    child.wait().expect("wait");
    landed
}

/// After the kills: one run that finishes, then the comparison with the truth and with the
/// uninterrupted run.
fn finish_and_compare(
    s: &Setup,
    truth: &BTreeSet<String>,
    reference: &BTreeMap<String, (Vec<u8>, u64)>,
    what: &str,
) {
    s.run(NOW).assert_code(0);
    let ids: Vec<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: rows duplicated");
    assert!(
        &unique == truth,
        "{what}: rows lost ({} of {})",
        unique.len(),
        truth.len()
    );
    let got: BTreeMap<String, Vec<u8>> = exported_files(&s.out())
        .into_iter()
        .map(|(k, (b, _))| (k, b))
        .collect();
    let want: BTreeMap<String, Vec<u8>> = reference
        .iter()
        .map(|(k, (b, _))| (k.clone(), b.clone()))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: other objects than an uninterrupted run"
    );
    assert!(
        got == want,
        "{what}: the bytes differ from an uninterrupted run"
    );
}

#[test]
fn killed_at_random_points_nothing_is_lost_duplicated_or_overwritten() {
    // The reference: the same input, never interrupted.
    let reference = Setup::standard();
    let truth = load(&reference);
    let started = Instant::now();
    reference.run(NOW).assert_code(0);
    let first = started.elapsed();
    // Calibrated on the faster of two runs, the kills land within a run however loaded the
    // machine was during the first.
    let again = Setup::standard();
    load(&again);
    let started = Instant::now();
    again.run(NOW).assert_code(0);
    let full_run = first.min(started.elapsed()).as_millis() as u64 * 9 / 10;
    let expected = exported_files(&reference.out());
    assert!(
        expected.keys().filter(|k| k.ends_with(".csv.gz")).count() >= 10,
        "enough objects to be interesting"
    );
    let mut rng = Rng(0x5eed_1234_abcd_0001);

    // One kill at a random point of each eighth of a run, each on a fresh copy.
    let trials = 8;
    let mut landed = 0;
    for i in 0..trials {
        let s = Setup::standard();
        load(&s);
        let delay = (i * full_run + rng.below(full_run)) / trials;
        landed += u64::from(kill_after(&s, Duration::from_millis(delay)));
        finish_and_compare(&s, &truth, &expected, &format!("killed at {delay} ms"));
    }
    assert!(
        landed >= trials / 2,
        "only {landed} of {trials} kills landed"
    );

    // Kill after kill on one copy: whatever a killed run wrote is never rewritten by the next.
    let s = Setup::standard();
    load(&s);
    let mut seen: BTreeMap<String, (Vec<u8>, u64)> = BTreeMap::new();
    for _ in 0..6 {
        let delay = rng.below(full_run / 2);
        kill_after(&s, Duration::from_millis(delay));
        let now = exported_files(&s.out());
        for (key, before) in &seen {
            assert_eq!(
                now.get(key),
                Some(before),
                "{key} was overwritten or removed after a kill at {delay} ms"
            );
        }
        seen = now;
    }
    finish_and_compare(&s, &truth, &expected, "killed six times");
}
