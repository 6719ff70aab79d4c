//! The database tables, as diesel sees them. The DDL is in `migrations/{sqlite,postgres,mysql}`.
//!
//! Times are `TIMESTAMP` without time zone holding UTC, on both backends, because diesel's
//! multi-backend connection supports no `TIMESTAMPTZ`; JSON is `TEXT` for the same reason.

// diesel's table! makes a struct per column and takes no doc comment for them: each column's
// meaning is on the model's field of the same name (`TaskExec`, `ScheduleExec`, ...).
#![allow(missing_docs)]

diesel::table! {
    /// One row per execution of a task: its arguments, state, timings and outcome.
    task_execs (id) {
        id -> BigInt,
        task_name -> Text,
        args -> Text,
        queue -> Text,
        priority -> Integer,
        state -> Text,
        due -> Timestamp,
        created -> Timestamp,
        started -> Nullable<Timestamp>,
        finished -> Nullable<Timestamp>,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        retries -> Integer,
        retry_delay -> BigInt,
        replaced_by -> Nullable<BigInt>,
        worker -> Nullable<Text>,
        unique_key -> Nullable<Text>,
        schedule -> Nullable<Text>,
        timeout_ms -> Nullable<BigInt>,
        result_ttl -> Nullable<BigInt>,
        hook -> Nullable<Text>,
        hook_ran -> Nullable<Timestamp>,
        hook_error -> Nullable<Text>,
        signature -> Nullable<Text>,
        progress -> Nullable<Double>,
        progress_message -> Nullable<Text>,
        cancel_requested -> Nullable<Timestamp>,
        flow_id -> Nullable<BigInt>,
        own_retries -> Bool,
        trace_context -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per worker label: its queues, heartbeat and how it stopped.
    worker_statuses (id) {
        id -> BigInt,
        label -> Text,
        queues -> Text,
        excluded_queues -> Text,
        timeout -> Double,
        last_tick -> Timestamp,
        started -> Timestamp,
        stopped -> Nullable<Timestamp>,
        exit_code -> Nullable<Integer>,
        exit_log -> Nullable<Text>,
        tasks -> Nullable<Text>,
        stop_request -> Nullable<Text>,
        handled -> BigInt,
        tick -> Double,
        cluster -> Nullable<Text>,
        restarts -> Integer,
    }
}

diesel::table! {
    /// One row per schedule name: the last occurrence materialized, for exactly-once runs.
    schedule_execs (id) {
        id -> BigInt,
        name -> Text,
        last_due -> Nullable<Timestamp>,
        last_task -> Nullable<BigInt>,
        state -> Text,
    }
}

diesel::table! {
    /// One row per schedule created at run time (not by `#[schedule]`).
    stored_schedules (id) {
        id -> BigInt,
        name -> Text,
        task_name -> Text,
        args -> Text,
        cron -> Nullable<Text>,
        tz -> Text,
        interval_seconds -> Nullable<BigInt>,
        interval_months -> Nullable<Integer>,
        month_end -> Bool,
        start -> Timestamp,
        repeats_left -> Nullable<Integer>,
        ends -> Nullable<Timestamp>,
        between_start -> Nullable<Integer>,
        between_end -> Nullable<Integer>,
        weekdays -> Nullable<Integer>,
        queue -> Nullable<Text>,
        paused -> Bool,
        created -> Timestamp,
        hook -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per queue given settings at run time (`QueueSettings`); a queue without a row
    /// has the defaults.
    queues (name) {
        name -> Text,
        paused -> Bool,
        concurrency_limit -> Nullable<Integer>,
        default_retries -> Nullable<Integer>,
        default_timeout_ms -> Nullable<BigInt>,
        updated -> Timestamp,
    }
}

diesel::table! {
    /// One row per flow: task calls run one after another (`Flow`).
    flows (id) {
        id -> BigInt,
        name -> Nullable<Text>,
        state -> Text,
        steps -> Integer,
        created -> Timestamp,
        updated -> Timestamp,
        finished -> Nullable<Timestamp>,
        final_exec -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per step of a flow: the row it enqueues, and where it is.
    flow_steps (flow_id, position) {
        flow_id -> BigInt,
        position -> Integer,
        task_name -> Text,
        args -> Text,
        queue -> Text,
        priority -> Integer,
        due -> Nullable<Timestamp>,
        delay_ms -> Nullable<BigInt>,
        retries -> Integer,
        retry_delay -> BigInt,
        timeout_ms -> Nullable<BigInt>,
        result_ttl -> Nullable<BigInt>,
        hook -> Nullable<Text>,
        signature -> Nullable<Text>,
        state -> Text,
        exec_id -> Nullable<BigInt>,
    }
}

diesel::joinable!(flow_steps -> flows (flow_id));
diesel::allow_tables_to_appear_in_same_query!(flows, flow_steps, task_execs);
