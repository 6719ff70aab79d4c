//! `app monitor`: a live terminal view of one database's workers, queues and throughput,
//! refreshed every second (django-q's `qmonitor`); `app status` stays the one-shot view.
//!
//! It reads the database only ([`Snapshot::read`]) and draws with ratatui on crossterm, in
//! 80×24 or more, so that it works over SSH. `q`, Esc or Ctrl-C quits.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use toosimple_core::{
    Count, EXACT_COUNT_LIMIT, Error, State, Store, TaskExec, TaskExecFilter, WorkerState,
    WorkerStatus,
};

/// How far back the throughput sparkline reaches, one bar a second.
pub const THROUGHPUT_WINDOW: usize = 60;

/// How long a stopped worker stays listed.
const RECENTLY_STOPPED: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// One worker as the monitor lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLine {
    /// Its label.
    pub label: String,
    /// Its state at the snapshot's time.
    pub state: WorkerState,
    /// Executions it runs now.
    pub running: i64,
    /// Executions it handled since it started.
    pub handled: i64,
    /// Seconds since its last heartbeat.
    pub silent_for: f64,
    /// What it runs now: a task's name, with its progress when it reported one
    /// (`render_report 45% page 9`), and how many more run beside it.
    pub current: Option<String>,
}

/// One queue's counts: exact up to [`EXACT_COUNT_LIMIT`] executions per state, estimates
/// (shown with `≈`) beyond.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLine {
    /// The queue.
    pub queue: String,
    /// Executions waiting to be claimed.
    pub queued: Count,
    /// Executions due later (retries, `queue_at`).
    pub sleeping: Count,
    /// Executions running.
    pub running: Count,
    /// Executions that failed (after their retries).
    pub failed: Count,
}

impl QueueLine {
    fn any_approximate(&self) -> bool {
        [self.queued, self.sleeping, self.running, self.failed]
            .iter()
            .any(|c| c.approximate)
    }
}

/// What one refresh shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// The database, password hidden.
    pub database: String,
    /// Running workers, and those stopped in the last minutes.
    pub workers: Vec<WorkerLine>,
    /// Every queue with executions.
    pub queues: Vec<QueueLine>,
    /// Executions finished in each of the last [`THROUGHPUT_WINDOW`] seconds, oldest first.
    pub per_second: Vec<u64>,
}

impl Snapshot {
    /// Reads the snapshot at `now` from `store`.
    pub fn read(store: &Store, now: DateTime<Utc>) -> Result<Snapshot, Error> {
        let running = TaskExec::running_per_worker_in(store)?;
        // Through the index of states: running rows are few, whatever the table's size.
        let processing = TaskExec::list_in(
            store,
            &TaskExecFilter::default()
                .state(State::Processing)
                .limit(CURRENT_ROWS),
        )?;
        let workers = WorkerStatus::list_in(store)?
            .into_iter()
            .filter(|w| w.stopped.is_none_or(|at| at >= now - RECENTLY_STOPPED))
            .map(|w| WorkerLine {
                running: running
                    .iter()
                    .find(|(label, _)| *label == w.label)
                    .map_or(0, |(_, n)| *n),
                state: w.state_at(now),
                handled: w.handled,
                silent_for: (now - w.last_tick).num_milliseconds().max(0) as f64 / 1000.0,
                current: current_task(&processing, &w.label),
                label: w.label,
            })
            .collect();
        let mut queues: Vec<QueueLine> = Vec::new();
        for count in TaskExec::view_counts_in(store, EXACT_COUNT_LIMIT)?.per_queue {
            let line = match queues.iter_mut().find(|q| q.queue == count.queue) {
                Some(line) => line,
                None => {
                    queues.push(QueueLine {
                        queue: count.queue.clone(),
                        ..QueueLine::default()
                    });
                    queues.last_mut().expect("just pushed")
                }
            };
            let n = count.shown();
            match count.state {
                State::Queued => line.queued += n,
                State::Sleeping => line.sleeping += n,
                State::Processing => line.running += n,
                State::Failed => line.failed += n,
                _ => {}
            }
        }
        // The window's last slot is the current second, still filling.
        let first = now.timestamp() - (THROUGHPUT_WINDOW as i64 - 1);
        let since = DateTime::from_timestamp(first, 0).unwrap_or(now);
        let mut per_second = vec![0u64; THROUGHPUT_WINDOW];
        for (second, n) in store.finished_per_second(since)? {
            let slot = second - first;
            if let Ok(slot) = usize::try_from(slot)
                && slot < THROUGHPUT_WINDOW
            {
                per_second[slot] += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(Snapshot {
            at: now,
            database: store.location().to_string(),
            workers,
            queues,
            per_second,
        })
    }
}

/// Running rows read for the workers' current tasks: more than a screen shows.
const CURRENT_ROWS: i64 = 500;

/// What worker `label` runs now, as the monitor shows it: the task that reported progress
/// last (else the one started last), its progress, and how many more run beside it.
fn current_task(processing: &[TaskExec], label: &str) -> Option<String> {
    let mine: Vec<&TaskExec> = processing
        .iter()
        .filter(|e| e.worker.as_deref() == Some(label))
        .collect();
    let shown = mine
        .iter()
        .max_by_key(|e| (e.progress.is_some(), e.started))?;
    let mut text = shown.task_name.clone();
    if let Some(progress) = &shown.progress {
        text.push_str(&format!(" {:.0}%", progress.fraction * 100.0));
        if let Some(message) = &progress.message {
            text.push(' ');
            text.push_str(message);
        }
    }
    if mine.len() > 1 {
        text = format!("{text} (+{})", mine.len() - 1);
    }
    Some(text)
}

fn state_style(state: WorkerState) -> Style {
    match state {
        WorkerState::Online => Style::new().fg(Color::Green),
        WorkerState::Stopping | WorkerState::Terminated => Style::new().fg(Color::Yellow),
        WorkerState::Crashed | WorkerState::TimedOut => Style::new().fg(Color::Red),
        WorkerState::Stopped => Style::new().fg(Color::DarkGray),
    }
}

/// Draws `snapshot` on `frame`, with `problem` (a failed refresh) in the title line.
pub fn render(frame: &mut Frame, snapshot: &Snapshot, problem: Option<&str>) {
    let area = frame.area();
    let worker_rows = snapshot.workers.len().max(1) as u16;
    let queue_rows = snapshot.queues.len().max(1) as u16;
    let [title, workers, queues, throughput] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Max(worker_rows + 3),
        Constraint::Max(queue_rows + 3),
        Constraint::Min(5),
    ])
    .areas(area);

    let mut heading = vec![
        Span::styled(
            "toosimple monitor",
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · {} · {}",
            snapshot.at.format("%H:%M:%S UTC"),
            snapshot.database
        )),
    ];
    if let Some(problem) = problem {
        heading.push(Span::styled(
            format!(" · {problem}"),
            Style::new().fg(Color::Red),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(heading)).style(Style::new()),
        title,
    );
    render_workers(frame, workers, snapshot);
    render_queues(frame, queues, snapshot);
    render_throughput(frame, throughput, snapshot);
}

/// Rows that fit `area` inside its borders and header; the last says how many are left out.
fn fitting<T>(items: &[T], area: Rect) -> (usize, usize) {
    let room = usize::from(area.height.saturating_sub(3));
    if items.len() <= room {
        (items.len(), 0)
    } else {
        let shown = room.saturating_sub(1);
        (shown, items.len() - shown)
    }
}

fn render_workers(frame: &mut Frame, area: Rect, snapshot: &Snapshot) {
    let running = snapshot
        .workers
        .iter()
        .filter(|w| w.state.is_running())
        .count();
    let block = Block::new()
        .borders(Borders::ALL)
        .title(format!(" Workers: {running} running · q quits "));
    let (shown, hidden) = fitting(&snapshot.workers, area);
    let mut rows: Vec<Row> = snapshot.workers[..shown]
        .iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(w.label.clone()),
                Cell::from(w.state.as_str()).style(state_style(w.state)),
                Cell::from(format!("{:>7}", w.running)),
                Cell::from(format!("{:>9}", w.handled)),
                Cell::from(format!("{:>8.1}s", w.silent_for)),
                Cell::from(w.current.clone().unwrap_or_default()),
            ])
        })
        .collect();
    if snapshot.workers.is_empty() {
        rows.push(Row::new(vec![Cell::from(
            "(no workers: start one with `app worker`)",
        )]));
    }
    if hidden > 0 {
        rows.push(Row::new(vec![Cell::from(format!("… and {hidden} more"))]));
    }
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Min(16),
        ],
    )
    .header(
        Row::new(vec![
            "worker",
            "state",
            "running",
            "  handled",
            "last beat",
            "now",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(block);
    frame.render_widget(table, area);
}

fn render_queues(frame: &mut Frame, area: Rect, snapshot: &Snapshot) {
    let title = if snapshot.queues.iter().any(QueueLine::any_approximate) {
        " Queues (≈: estimated, over 10000 per state) "
            .replace("10000", &EXACT_COUNT_LIMIT.to_string())
    } else {
        " Queues ".to_string()
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let (shown, hidden) = fitting(&snapshot.queues, area);
    let mut rows: Vec<Row> = snapshot.queues[..shown]
        .iter()
        .map(|q| {
            let failed = Cell::from(format!("{:>9}", q.failed)).style(if q.failed.n > 0 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            });
            Row::new(vec![
                Cell::from(q.queue.clone()),
                Cell::from(format!("{:>9}", q.queued)),
                Cell::from(format!("{:>9}", q.sleeping)),
                Cell::from(format!("{:>9}", q.running)),
                failed,
            ])
        })
        .collect();
    if snapshot.queues.is_empty() {
        rows.push(Row::new(vec![Cell::from("(no executions yet)")]));
    }
    if hidden > 0 {
        rows.push(Row::new(vec![Cell::from(format!("… and {hidden} more"))]));
    }
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec![
            "queue",
            "   queued",
            " sleeping",
            "  running",
            "   failed",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(block);
    frame.render_widget(table, area);
}

fn render_throughput(frame: &mut Frame, area: Rect, snapshot: &Snapshot) {
    let last_minute: u64 = snapshot.per_second.iter().sum();
    // The current second is still filling: the last whole one is the rate now.
    let now = snapshot
        .per_second
        .len()
        .checked_sub(2)
        .map_or(0, |i| snapshot.per_second[i]);
    let peak = snapshot.per_second.iter().copied().max().unwrap_or(0);
    let block = Block::new().borders(Borders::ALL).title(format!(
        " Finished per second: {now}/s now, {last_minute} in the last minute, peak {peak}/s "
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Newest on the right: as many seconds as there are columns.
    let width = usize::from(inner.width).min(snapshot.per_second.len());
    let data: Vec<u64> = snapshot.per_second[snapshot.per_second.len() - width..].to_vec();
    let bars = Rect {
        x: inner.x + inner.width - width as u16,
        width: width as u16,
        ..inner
    };
    frame.render_widget(
        Sparkline::default()
            .data(data)
            .style(Style::new().fg(Color::Cyan)),
        bars,
    );
    frame.render_widget(
        Paragraph::new("1 min ago").style(Style::new().fg(Color::DarkGray)),
        Rect {
            width: inner.width.saturating_sub(width as u16),
            height: 1,
            ..inner
        },
    );
}

/// Runs the monitor on this terminal until `q`, refreshing every `refresh`.
pub fn run(store: &Store, refresh: Duration) -> std::io::Result<()> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

    let mut snapshot = Snapshot::read(store, Utc::now()).map_err(std::io::Error::other)?;
    let mut problem: Option<String> = None;
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        let mut next = Instant::now() + refresh;
        loop {
            terminal.draw(|frame| render(frame, &snapshot, problem.as_deref()))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                if let Event::Key(key) = event::read()?
                    && key.kind == KeyEventKind::Press
                {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL);
                    if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                        return Ok(());
                    }
                }
                continue;
            }
            next = Instant::now() + refresh;
            match Snapshot::read(store, Utc::now()) {
                Ok(fresh) => {
                    snapshot = fresh;
                    problem = None;
                }
                // The last good view stays, with the reason it is not fresh.
                Err(e) => problem = Some(format!("refresh failed: {}", e.report())),
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn snapshot(workers: usize, queues: usize) -> Snapshot {
        Snapshot {
            at: DateTime::parse_from_rfc3339("2026-12-07T10:20:30Z")
                .unwrap()
                .with_timezone(&Utc),
            database: "/srv/app/toosimple.sqlite3".to_string(),
            workers: (1..=workers)
                .map(|n| WorkerLine {
                    label: format!("worker-{n}"),
                    state: if n == 2 {
                        WorkerState::Stopping
                    } else {
                        WorkerState::Online
                    },
                    running: n as i64,
                    handled: 1000 * n as i64,
                    silent_for: 0.4,
                    current: (n == 1).then(|| "render 45% p9 (+1)".to_string()),
                })
                .collect(),
            queues: (1..=queues)
                .map(|n| QueueLine {
                    queue: format!("queue-{n}"),
                    queued: Count::exact(10 * n as i64),
                    sleeping: Count::exact(1),
                    running: Count::exact(2),
                    failed: Count::exact(n as i64 - 1),
                })
                .collect(),
            per_second: (0..THROUGHPUT_WINDOW as u64).map(|s| s % 7).collect(),
        }
    }

    fn screen(snapshot: &Snapshot) -> String {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal
            .draw(|frame| render(frame, snapshot, None))
            .unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn everything_fits_in_80_by_24() {
        let screen = screen(&snapshot(3, 2));
        for expected in [
            "toosimple monitor · 10:20:30 UTC · /srv/app/toosimple.sqlite3",
            "Workers: 3 running · q quits",
            "worker-1",
            "worker-2",
            "stopping",
            "3000",
            "render 45% p9 (+1)",
            "queue-2",
            "Finished per second: 2/s now, 174 in the last minute, peak 6/s",
        ] {
            assert!(screen.contains(expected), "{expected:?} in:\n{screen}");
        }
    }

    #[test]
    fn many_workers_and_queues_say_how_many_are_left_out() {
        let screen = screen(&snapshot(40, 30));
        assert!(screen.contains("… and 35 more"), "{screen}");
        assert!(screen.contains("… and 25 more"), "{screen}");
        assert!(screen.contains("Finished per second"), "{screen}");
    }

    #[test]
    fn estimated_counts_show_with_their_mark_and_a_legend() {
        let mut snapshot = snapshot(1, 2);
        let screen_exact = screen(&snapshot);
        assert!(!screen_exact.contains('≈'), "{screen_exact}");
        snapshot.queues[0].failed = Count::estimate(26_712);
        let screen = screen(&snapshot);
        assert!(screen.contains("≈26700"), "{screen}");
        assert!(
            screen.contains("Queues (≈: estimated, over 10000 per state)"),
            "{screen}"
        );
    }
}
