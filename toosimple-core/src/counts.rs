//! Counts of executions per state and queue for the views (the admin's overview, `status`,
//! the monitor), bounded so that they stay fast whatever the size of the history.
//!
//! Counting every row per queue and state reads the whole table: 0.5 s for a million rows on
//! SQLite, and each view refreshes it. [`TaskExec::view_counts_in`] reads at most
//! `exact_up_to + 1` rows of each state (the newest, through the index on `(state, id)`): a
//! state with no more rows than that is counted exactly, per queue too. A bigger one (most
//! often `succeeded`) is counted by the database's cheap means, and its split per queue is
//! estimated from its newest rows; such counts are marked [`approximate`](Count::approximate)
//! and every view shows them with a `≈`.

use std::fmt;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::State;
use crate::error::Result;
use crate::exec::{QueueCount, TaskExec};
use crate::store::{Store, count_big_states};

/// How many executions of one state the views count one by one before they estimate: the
/// admin's overview, `status` and the monitor read at most this many rows (plus one) per
/// state, whatever the size of the table.
pub const EXACT_COUNT_LIMIT: i64 = 10_000;

/// A number of executions as a view shows it: exact, or an estimate.
///
/// It prints as the number, with `≈` before an estimate (rounded to three significant
/// digits, since the digits after those mean nothing):
///
/// ```
/// use toosimple_core::Count;
/// assert_eq!(Count::exact(1234).to_string(), "1234");
/// assert_eq!(Count::estimate(968_412).to_string(), "≈968000");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// How many.
    pub n: i64,
    /// Whether `n` is an estimate rather than a count of the rows.
    pub approximate: bool,
}

impl Count {
    /// An exact count.
    pub fn exact(n: i64) -> Count {
        Count {
            n,
            approximate: false,
        }
    }

    /// An estimate.
    pub fn estimate(n: i64) -> Count {
        Count {
            n,
            approximate: true,
        }
    }

    /// The sum of two counts: an estimate when either is.
    pub fn plus(self, other: Count) -> Count {
        Count {
            n: self.n + other.n,
            approximate: self.approximate || other.approximate,
        }
    }
}

impl std::ops::AddAssign for Count {
    fn add_assign(&mut self, other: Count) {
        *self = self.plus(other);
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.approximate {
            format!("≈{}", significant(self.n, 3))
        } else {
            self.n.to_string()
        };
        f.pad(&text)
    }
}

/// `n` rounded to `digits` significant digits.
fn significant(n: i64, digits: u32) -> i64 {
    let mut scale = 1i64;
    while n.abs() / scale >= 10i64.pow(digits) {
        scale *= 10;
    }
    (n + scale / 2) / scale * scale
}

/// How many executions are in one state, as [`ExecCounts`] gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCount {
    /// The state.
    pub state: State,
    /// How many executions.
    pub count: i64,
    /// Whether `count` is an estimate (the state has more than the views count one by one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// What the views show of the executions: how many per state, and per queue and state,
/// each exact or marked as an estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCounts {
    /// Every state, in [`State::ALL`] order (zero included).
    pub per_state: Vec<StateCount>,
    /// The queues and states with executions, by queue then state.
    pub per_queue: Vec<QueueCount>,
    /// States with more executions than this are estimated.
    pub exact_up_to: i64,
}

impl ExecCounts {
    /// How many executions are in `state`.
    pub fn state(&self, state: State) -> Count {
        self.per_state
            .iter()
            .find(|c| c.state == state)
            .map_or_else(Count::default, |c| Count {
                n: c.count,
                approximate: c.approximate,
            })
    }

    /// Whether any count is an estimate: the views then say what `≈` means.
    pub fn any_approximate(&self) -> bool {
        self.per_state.iter().any(|c| c.approximate) || self.per_queue.iter().any(|c| c.approximate)
    }
}

/// A queue's share of the newest rows of one state.
#[derive(QueryableByName)]
struct QueueTally {
    #[diesel(sql_type = diesel::sql_types::Text)]
    queue: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TaskExec {
    /// Counts the executions of `store` per state and per queue and state, reading at most
    /// `exact_up_to + 1` rows of each state, so that the admin's overview, `status` and the
    /// monitor answer in milliseconds beside millions of rows. (Pass
    /// [`EXACT_COUNT_LIMIT`] as they do; [`counts_in`](TaskExec::counts_in) counts every row.)
    ///
    /// A state with at most `exact_up_to` executions is counted exactly, per queue too. For a
    /// bigger one, the total comes from the database: exact on SQLite (its index on
    /// `(state, id)` counted, the biggest state as the rest of the table's row count, which
    /// SQLite reads page by page), the query planner's estimate on PostgreSQL, MariaDB and
    /// MySQL (from the statistics `ANALYZE` and autovacuum keep). Its split per queue is then
    /// estimated from its newest `exact_up_to + 1` rows. Estimates are marked `approximate`.
    ///
    /// ```no_run
    /// use toosimple_core::{State, TaskExec, EXACT_COUNT_LIMIT};
    /// let store = toosimple_core::default_store()?;
    /// let counts = TaskExec::view_counts_in(&store, EXACT_COUNT_LIMIT)?;
    /// println!("{} succeeded", counts.state(State::Succeeded));
    /// # Ok::<(), toosimple_core::Error>(())
    /// ```
    pub fn view_counts_in(store: &Store, exact_up_to: i64) -> Result<ExecCounts> {
        let exact_up_to = exact_up_to.max(0);
        let sample = exact_up_to + 1;
        store.autocommit(
            || "counting task executions per state and queue".to_string(),
            |c| {
                // One snapshot for every read: on SQLite the biggest state is the table's
                // count less the others.
                c.transaction(|c| {
                    let mut newest: Vec<(State, Vec<(String, i64)>)> = Vec::new();
                    for state in State::ALL {
                        // The state as a literal (one of `State::ALL`'s names): with a bound
                        // parameter, PostgreSQL's generic plan may walk the primary key
                        // backwards for a rare state instead of its range of the state index.
                        // Grouped by the database: ten thousand rows never leave it.
                        let rows: Vec<QueueTally> = diesel::sql_query(format!(
                            "SELECT queue, COUNT(*) AS n FROM (SELECT queue FROM task_execs \
                             WHERE state = '{}' ORDER BY id DESC LIMIT {sample}) AS newest \
                             GROUP BY queue",
                            state.as_str()
                        ))
                        .load(c)?;
                        newest.push((state, rows.into_iter().map(|r| (r.queue, r.n)).collect()));
                    }
                    let read = |rows: &Vec<(String, i64)>| rows.iter().map(|(_, n)| n).sum::<i64>();
                    let big: Vec<&str> = newest
                        .iter()
                        .filter(|(_, rows)| read(rows) > exact_up_to)
                        .map(|(state, _)| state.as_str())
                        .collect();
                    let counted: i64 = newest
                        .iter()
                        .map(|(_, rows)| read(rows))
                        .filter(|n| *n <= exact_up_to)
                        .sum();
                    let totals = if big.is_empty() {
                        Vec::new()
                    } else {
                        count_big_states(c, &big, counted)?
                    };
                    Ok(assemble(newest, &big, &totals, exact_up_to))
                })
            },
        )
    }
}

/// The counts from the newest rows of each state and the totals of the `big` states.
fn assemble(
    newest: Vec<(State, Vec<(String, i64)>)>,
    big: &[&str],
    totals: &[(i64, bool)],
    exact_up_to: i64,
) -> ExecCounts {
    let mut per_state = Vec::new();
    let mut per_queue: Vec<QueueCount> = Vec::new();
    for (state, tally) in newest {
        let read: i64 = tally.iter().map(|(_, n)| n).sum();
        let total = big
            .iter()
            .position(|b| *b == state.as_str())
            .and_then(|i| totals.get(i).copied());
        let (count, exact) = match total {
            // A statistics estimate below what was just read is stale: the rows read are
            // there.
            Some((n, exact)) => (n.max(read), exact),
            None => (read, true),
        };
        per_state.push(StateCount {
            state,
            count,
            approximate: !exact,
        });
        for (queue, n) in tally {
            let (n, approximate) = match total {
                // The state's total shared as among its newest rows, never below what was
                // read of this queue.
                Some(_) => (
                    ((count as f64) * (n as f64) / (read as f64)).round() as i64,
                    true,
                ),
                None => (n, false),
            };
            per_queue.push(QueueCount {
                queue,
                state,
                count: n,
                approximate,
            });
        }
    }
    per_queue.sort_by(|a, b| {
        a.queue
            .cmp(&b.queue)
            .then(a.state.as_str().cmp(b.state.as_str()))
    });
    ExecCounts {
        per_state,
        per_queue,
        exact_up_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_print_with_three_significant_digits() {
        assert_eq!(Count::exact(0).to_string(), "0");
        assert_eq!(Count::exact(968_412).to_string(), "968412");
        assert_eq!(Count::estimate(968_412).to_string(), "≈968000");
        assert_eq!(Count::estimate(968_512).to_string(), "≈969000");
        assert_eq!(Count::estimate(10_001).to_string(), "≈10000");
        assert_eq!(Count::estimate(999).to_string(), "≈999");
        assert_eq!(format!("{:>8}", Count::estimate(26_700)), "  ≈26700");
    }

    #[test]
    fn a_sum_with_an_estimate_is_an_estimate() {
        let mut c = Count::exact(3);
        c += Count::exact(4);
        assert_eq!(c, Count::exact(7));
        c += Count::estimate(10);
        assert_eq!(c, Count::estimate(17));
    }

    #[test]
    fn big_states_share_their_total_as_their_newest_rows() {
        let newest = vec![
            (
                State::Queued,
                vec![("a".to_string(), 1), ("b".to_string(), 1)],
            ),
            (
                State::Succeeded,
                vec![("a".to_string(), 3), ("b".to_string(), 1)],
            ),
        ];
        let counts = assemble(newest, &["succeeded"], &[(1000, false)], 3);
        assert_eq!(counts.state(State::Queued), Count::exact(2));
        assert_eq!(counts.state(State::Succeeded), Count::estimate(1000));
        let a_ok = counts
            .per_queue
            .iter()
            .find(|c| c.queue == "a" && c.state == State::Succeeded)
            .unwrap();
        assert_eq!((a_ok.count, a_ok.approximate), (750, true));
        assert!(counts.any_approximate());
        // A stale estimate never says fewer than were read.
        let newest = vec![(State::Failed, vec![("a".to_string(), 4)])];
        let counts = assemble(newest, &["failed"], &[(2, false)], 3);
        assert_eq!(counts.state(State::Failed), Count::estimate(4));
    }
}
