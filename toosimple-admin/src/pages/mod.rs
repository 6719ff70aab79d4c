//! One module per page.

pub(crate) mod execs;
pub(crate) mod flows;
pub(crate) mod overview;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod tasks;
pub(crate) mod workers;
