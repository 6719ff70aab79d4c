//! The invariants a chaos run checks at its end, from its ledgers and the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use toosimple_core::{State, TaskExec};

/// What the ledgers and the table hold at the end of a run.
pub struct Evidence {
    /// Every row of the task table.
    pub rows: Vec<TaskExec>,
    /// Keys whose enqueue returned Ok.
    pub acknowledged: BTreeSet<i64>,
    /// Keys whose enqueue returned an error (a row may or may not exist: the error may have
    /// come after the commit).
    pub refused: BTreeSet<i64>,
    /// Side effects per key: the labels of the workers whose run of it reached its end.
    pub effects: BTreeMap<i64, Vec<String>>,
    /// Labels of workers that a fault could have made lose their tasks (killed, stopped,
    /// terminated, paused, partitioned): only their tasks may be interrupted.
    pub faulted: BTreeSet<String>,
}

/// The findings: counts, and every violated invariant in words.
#[derive(Debug, Default)]
pub struct Findings {
    /// Keys with a row.
    pub tasks: usize,
    /// Rows in the table.
    pub executions: usize,
    /// Acknowledged keys without a succeeded execution at the end of their chain.
    pub lost: usize,
    /// Keys with more than one succeeded execution.
    pub double_recorded: usize,
    /// Keys whose side effect happened more than once, by the cause that allows it.
    pub duplicates_by_cause: BTreeMap<&'static str, usize>,
    /// Rows by final state.
    pub by_state: BTreeMap<&'static str, usize>,
    /// Interrupted rows, by the worker that held them.
    pub interrupted: usize,
    /// Failed rows (a planned failure or a time-out) that were retried.
    pub retried: usize,
    /// Every violated invariant, one sentence each.
    pub violations: Vec<String>,
}

/// Checks every invariant; see the crate docs for the list.
pub fn check(evidence: &Evidence) -> Findings {
    let mut findings = Findings {
        executions: evidence.rows.len(),
        ..Findings::default()
    };
    let violation = |findings: &mut Findings, text: String| {
        // A run that breaks everything should not print a million lines.
        if findings.violations.len() < 50 {
            findings.violations.push(text);
        } else if findings.violations.len() == 50 {
            findings.violations.push("… and more".to_string());
        }
    };
    let by_id: HashMap<i64, &TaskExec> = evidence.rows.iter().map(|r| (r.id, r)).collect();
    let mut keys: BTreeMap<i64, Vec<&TaskExec>> = BTreeMap::new();
    let mut replaced: HashMap<i64, i64> = HashMap::new();
    for row in &evidence.rows {
        *findings.by_state.entry(row.state.as_str()).or_default() += 1;
        let Some(key) = row.args.get("key").and_then(|k| k.as_i64()) else {
            violation(
                &mut findings,
                format!("execution #{} has no key: {}", row.id, row.args),
            );
            continue;
        };
        keys.entry(key).or_default().push(row);
        if let Some(next) = row.replaced_by
            && let Some(earlier) = replaced.insert(next, row.id)
        {
            violation(
                &mut findings,
                format!("execution #{next} replaces both #{earlier} and #{}", row.id),
            );
        }
    }
    findings.tasks = keys.len();

    for key in evidence.acknowledged.iter() {
        if !keys.contains_key(key) {
            findings.lost += 1;
            violation(
                &mut findings,
                format!("task {key} was acknowledged but has no row: lost"),
            );
        }
    }
    for (key, rows) in &keys {
        if !evidence.acknowledged.contains(key) && !evidence.refused.contains(key) {
            violation(
                &mut findings,
                format!("task {key} has rows but no enqueuer ever sent it"),
            );
        }
        let roots: Vec<&&TaskExec> = rows
            .iter()
            .filter(|r| !replaced.contains_key(&r.id))
            .collect();
        if roots.len() != 1 {
            violation(
                &mut findings,
                format!(
                    "task {key} has {} first executions (enqueued twice?): {:?}",
                    roots.len(),
                    roots.iter().map(|r| r.id).collect::<Vec<_>>()
                ),
            );
            continue;
        }
        // Walk the chain, checking each link as django-toosimple-q documents it.
        let mut chain = vec![*roots[0]];
        while let Some(next) = chain.last().and_then(|r| r.replaced_by) {
            let Some(next_row) = by_id.get(&next) else {
                violation(
                    &mut findings,
                    format!(
                        "task {key}: #{} is replaced by missing #{next}",
                        chain.last().unwrap().id
                    ),
                );
                break;
            };
            if chain.len() > rows.len() {
                violation(&mut findings, format!("task {key}: its chain loops"));
                break;
            }
            chain.push(next_row);
        }
        if chain.len() != rows.len() {
            violation(
                &mut findings,
                format!(
                    "task {key} has {} executions but a chain of {}",
                    rows.len(),
                    chain.len()
                ),
            );
        }
        for pair in chain.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            let (retries, delay) = match earlier.state {
                State::Failed => (
                    if earlier.retries < 0 {
                        earlier.retries
                    } else {
                        earlier.retries - 1
                    },
                    earlier.retry_delay * 2,
                ),
                State::Interrupted => (earlier.retries, earlier.retry_delay),
                other => {
                    violation(
                        &mut findings,
                        format!(
                            "task {key}: #{} is {} yet was replaced",
                            earlier.id,
                            other.as_str()
                        ),
                    );
                    continue;
                }
            };
            if earlier.state == State::Failed && earlier.retries == 0 {
                violation(
                    &mut findings,
                    format!(
                        "task {key}: #{} had no retry left yet was retried",
                        earlier.id
                    ),
                );
            }
            if later.retries != retries || later.retry_delay != delay {
                violation(
                    &mut findings,
                    format!(
                        "task {key}: #{} (retries {}, delay {}) after {} #{} should have retries {retries}, delay {delay}",
                        later.id,
                        later.retries,
                        later.retry_delay,
                        earlier.state.as_str(),
                        earlier.id
                    ),
                );
            }
        }
        let last = chain.last().expect("a chain has its root");
        match last.state {
            State::Succeeded => {}
            State::Interrupted | State::Failed => violation(
                &mut findings,
                format!(
                    "task {key}: #{} ended {} without a replacement: {}",
                    last.id,
                    last.state.as_str(),
                    last.error.as_deref().unwrap_or("")
                ),
            ),
            other => violation(
                &mut findings,
                format!("task {key}: #{} was left {}", last.id, other.as_str()),
            ),
        }
        let succeeded = rows.iter().filter(|r| r.state == State::Succeeded).count();
        if succeeded > 1 {
            findings.double_recorded += 1;
            violation(
                &mut findings,
                format!("task {key} has {succeeded} succeeded executions"),
            );
        } else if succeeded == 0 && evidence.acknowledged.contains(key) {
            findings.lost += 1;
        }
        let interrupted: Vec<&&TaskExec> = rows
            .iter()
            .filter(|r| r.state == State::Interrupted)
            .collect();
        findings.interrupted += interrupted.len();
        findings.retried += rows.iter().filter(|r| r.state == State::Failed).count();
        for row in &interrupted {
            let worker = row.worker.as_deref().unwrap_or("");
            if !evidence.faulted.contains(worker) {
                violation(
                    &mut findings,
                    format!(
                        "task {key}: #{} of worker {worker:?}, which no fault touched, was interrupted: {}",
                        row.id,
                        row.error.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        // A side effect may repeat only where a run was cut short after it (at-least-once).
        let effects = evidence.effects.get(key).map_or(0, Vec::len);
        if succeeded >= 1 && effects == 0 {
            violation(
                &mut findings,
                format!("task {key} is recorded succeeded but its side effect never happened"),
            );
        }
        if effects > 1 {
            if effects - 1 <= interrupted.len() {
                *findings
                    .duplicates_by_cause
                    .entry("run again after an interruption")
                    .or_default() += 1;
            } else {
                *findings
                    .duplicates_by_cause
                    .entry("unexplained (a violation)")
                    .or_default() += 1;
                violation(
                    &mut findings,
                    format!(
                        "task {key}'s side effect happened {effects} times ({:?}) with {} interrupted runs",
                        evidence.effects[key],
                        interrupted.len()
                    ),
                );
            }
        }
    }
    for key in evidence.effects.keys() {
        if !keys.contains_key(key) {
            violation(
                &mut findings,
                format!("task {key} has a side effect but no row"),
            );
        }
    }
    findings
}
