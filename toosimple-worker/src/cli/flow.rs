//! `flow show ID|NAME` and `flow list`: flows (django-pq's `FlowStore`), by id or by name.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use toosimple_core::{Flow, FlowExec, Store, TaskExec};

use super::Failure;

#[derive(Debug, Subcommand)]
pub(super) enum FlowCommand {
    /// Show one flow and its steps: `flow show 42`, or `flow show signup` (the newest flow of
    /// that name).
    Show {
        /// The flow's id, or its name.
        #[arg(value_name = "ID|NAME")]
        flow: String,
        /// Print JSON (the flow, its steps and its executions) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the newest flows: id, name, state, step reached.
    List {
        /// Only the flows of this name.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".to_string(), |t| {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    })
}

/// How far a flow went: the step running, or how many succeeded.
fn progress(flow: &FlowExec) -> String {
    let done = flow
        .steps
        .iter()
        .filter(|s| s.state == toosimple_core::StepState::Succeeded)
        .count();
    match flow.current_step() {
        Some(step) => format!("step {}/{}", step.position, flow.steps.len()),
        None => format!("{done}/{} succeeded", flow.steps.len()),
    }
}

pub(super) fn run(store: &Store, command: FlowCommand) -> Result<(), Failure> {
    match command {
        FlowCommand::Show { flow, json } => {
            let flow = Flow::lookup_in(store, &flow)?;
            let execs: Vec<TaskExec> = Flow::executions_in(store, flow.id)?;
            if json {
                let mut value = serde_json::to_value(&flow).unwrap_or_default();
                value["executions"] = serde_json::to_value(&execs).unwrap_or_default();
                out!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
                return Ok(());
            }
            out!(
                "flow {}{}: {} ({})",
                flow.id,
                flow.name
                    .as_deref()
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default(),
                flow.state,
                progress(&flow)
            );
            out!("  created   {}", time(Some(flow.created)));
            out!("  finished  {}", time(flow.finished));
            if let Some(error) = &flow.error {
                out!("  error     {error}");
            }
            out!(
                "  {:>4}  {:<24} {:<10} {:>10}  {:<11} {:<20} {:<20}",
                "step",
                "task",
                "state",
                "execution",
                "its state",
                "started",
                "finished"
            );
            for step in &flow.steps {
                let exec = step.exec.and_then(|id| execs.iter().find(|e| e.id == id));
                out!(
                    "  {:>4}  {:<24} {:<10} {:>10}  {:<11} {:<20} {:<20}",
                    step.position,
                    step.task_name,
                    step.state.as_str(),
                    step.exec.map_or("-".to_string(), |id| format!("#{id}")),
                    exec.map_or("-".to_string(), |e| e.state.to_string()),
                    time(exec.and_then(|e| e.started)),
                    time(exec.and_then(|e| e.finished)),
                );
            }
            let retried: Vec<String> = execs
                .iter()
                .filter(|e| e.replaced_by.is_some())
                .map(|e| format!("#{} ({})", e.id, e.state))
                .collect();
            if !retried.is_empty() {
                out!("  earlier runs (retried): {}", retried.join(", "));
            }
        }
        FlowCommand::List { name, limit, json } => {
            let flows = match &name {
                Some(name) => {
                    let mut found = Flow::find_in(store, name)?;
                    found.truncate(usize::try_from(limit.max(0)).unwrap_or(usize::MAX));
                    found
                }
                None => Flow::list_in(store, limit.max(0))?,
            };
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&flows).unwrap_or_default()
                );
                return Ok(());
            }
            out!(
                "{:>8}  {:<24} {:<10} {:<18} {:<20} {:<20}",
                "id",
                "name",
                "state",
                "progress",
                "created",
                "finished"
            );
            if flows.is_empty() {
                out!(
                    "(no flows{})",
                    name.map(|n| format!(" named {n:?}")).unwrap_or_default()
                );
            }
            for flow in &flows {
                out!(
                    "{:>8}  {:<24} {:<10} {:<18} {:<20} {:<20}",
                    flow.id,
                    flow.name.as_deref().unwrap_or("-"),
                    flow.state.as_str(),
                    progress(flow),
                    time(Some(flow.created)),
                    time(flow.finished)
                );
            }
        }
    }
    Ok(())
}
