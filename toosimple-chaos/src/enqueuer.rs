//! The enqueuing processes of a chaos run: one feeds the run's tasks over its first seconds,
//! others burst in as write contention. Each key acknowledged (its enqueue returned Ok) is
//! appended to the enqueue ledger; a key whose enqueue failed is noted as refused.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::tasks::{ENQUEUED, Kind, append_synced, step};

/// What a key's task does: its kind and its milliseconds, from the seed alone (so any process
/// can tell).
pub fn plan(seed: u64, key: i64, slow: bool) -> (Kind, u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key as u64);
    let kind = match rng.random_range(0..100) {
        0..3 => Kind::FailsOnce,
        3..5 if slow => Kind::SlowOnce,
        _ => Kind::Quick,
    };
    // Mostly short runs, and a few long enough that kills and stops find them running.
    let ms = if rng.random_range(0..100) < 3 {
        rng.random_range(300..1500)
    } else {
        rng.random_range(1..60)
    };
    (kind, ms)
}

/// Enqueues keys `from..from + count` through the default store (`TOOSIMPLE_DATABASE_URL`),
/// spread evenly over `seconds` (0: as fast as it can, one call per task), in chunks of a
/// random size: one `queue` call per task for small chunks, `queue_many` for large ones.
/// Returns how many were refused.
pub fn run(dir: &Path, from: i64, count: i64, seconds: f64, seed: u64, slow: bool) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ from as u64);
    let ledger = dir.join(ENQUEUED);
    let start = Instant::now();
    let mut refused = 0;
    let mut key = from;
    while key < from + count {
        if seconds > 0.0 {
            let due = start
                + Duration::from_secs_f64(seconds * (key - from) as f64 / count.max(1) as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let size = if seconds > 0.0 {
            rng.random_range(1..=40)
        } else {
            1
        };
        let keys: Vec<i64> = (key..(key + size).min(from + count)).collect();
        key += keys.len() as i64;
        let mut lines = String::new();
        if keys.len() > 10 {
            let items = keys.iter().map(|&k| {
                let (kind, ms) = plan(seed, k, slow);
                (k, kind, ms)
            });
            match step::queue_many(items) {
                Ok(_) => keys
                    .iter()
                    .for_each(|k| lines.push_str(&format!("E {k}\n"))),
                Err(e) => {
                    refused += keys.len();
                    let reason = one_line(&e.to_string());
                    keys.iter()
                        .for_each(|k| lines.push_str(&format!("R {k} {reason}\n")));
                }
            }
        } else {
            for &k in &keys {
                let (kind, ms) = plan(seed, k, slow);
                match step::queue(k, kind, ms) {
                    Ok(_) => lines.push_str(&format!("E {k}\n")),
                    Err(e) => {
                        refused += 1;
                        lines.push_str(&format!("R {k} {}\n", one_line(&e.to_string())));
                    }
                }
            }
        }
        if let Err(e) = append_synced(&ledger, &lines) {
            // Without its ledger the run cannot be checked: stop loudly.
            eprintln!("cannot write the enqueue ledger: {e}");
            std::process::exit(3);
        }
    }
    refused
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}
