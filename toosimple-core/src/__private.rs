//! What the `#[task]` and `#[schedule]` macros' generated code calls. Not a stable API: only
//! the macros of the same version use it.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use chrono;
pub use inventory;
pub use serde_json;

pub use crate::enqueue::__private::{
    enqueue, enqueue_in, enqueue_in_with, enqueue_many, enqueue_many_with, enqueue_with,
};
pub use crate::error::{Error, Result};
pub use crate::flow::TaskCall;
pub use crate::hook::{Hook, HookOutput};
pub use crate::options::{Call, CallOptions, CallTarget};
pub use crate::registry::{BoxFuture, Invoker, RunError, RunResult, TaskDef};
pub use crate::schedule::ScheduleDef;
pub use crate::store::EnqueueConnection;
pub use crate::{State, TaskContext, TaskExec, TaskHandle};

/// Task arguments are stored as JSON: each must serialize and deserialize.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task argument: it does not implement Serialize and Deserialize",
    label = "task arguments are stored as JSON",
    note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, or use an owned type that has them"
)]
pub trait TaskArg: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> TaskArg for T {}

/// Task results are stored as JSON: they must serialize.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task result: it does not implement Serialize",
    label = "task results are stored as JSON",
    note = "derive `serde::Serialize` for `{Self}`"
)]
pub trait TaskOutput: Serialize {}
impl<T: Serialize> TaskOutput for T {}

/// The error type of a task returning `Result<T, E>` must be displayable, to be recorded.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task error: it does not implement Display",
    label = "task errors are recorded as text",
    note = "implement `std::fmt::Display` for `{Self}`"
)]
pub trait TaskErrorType: Display {}
impl<T: Display> TaskErrorType for T {}

/// Compile-time check that `T` can be a task argument.
pub const fn assert_task_arg<T: TaskArg>() {}
/// Compile-time check that `T` can be a task result.
pub const fn assert_task_output<T: TaskOutput>() {}
/// Compile-time check that `E` can be a task error.
pub const fn assert_task_error<E: TaskErrorType>() {}

/// The success and error types of a task's `Result` return type, for a `Result` written without
/// its generic arguments (a type alias): `Output` is then `<R as TaskResult>::Ok`.
pub trait TaskResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}
impl<T, E> TaskResult for std::result::Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// How generated code encodes and decodes one argument type, obtained through [`task_arg`].
///
/// The macro routes every use of an argument type (the compile-time check, `__toosimple::args`,
/// the runner) through `task_arg::<T>()` at the argument's span, so that a type lacking
/// `Serialize`/`Deserialize` gives one error at the argument instead of one per use.
pub struct ArgCodec<T> {
    encode: fn(&T) -> serde_json::Result<Value>,
    decode: fn(Value) -> serde_json::Result<T>,
}

impl<T> Clone for ArgCodec<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ArgCodec<T> {}

/// The codec of argument type `T`: the only place generated code requires `T: TaskArg`.
pub const fn task_arg<T: TaskArg>() -> ArgCodec<T> {
    fn encode<T: Serialize>(value: &T) -> serde_json::Result<Value> {
        serde_json::to_value(value)
    }
    fn decode<T: DeserializeOwned>(value: Value) -> serde_json::Result<T> {
        serde_json::from_value(value)
    }
    ArgCodec {
        encode: encode::<T>,
        decode: decode::<T>,
    }
}

/// How a task's result becomes its outcome: the only place generated code requires
/// `T: TaskOutput` (see [`ArgCodec`] for why).
pub const fn task_output<T: TaskOutput>() -> fn(T) -> RunResult {
    value_outcome::<T>
}

/// How a task's error is recorded: the only place generated code requires `E: TaskErrorType`.
pub const fn task_error<E: TaskErrorType>() -> fn(&E) -> String {
    error_text::<E>
}

/// The text of an error, for tasks whose error type is not written out (`anyhow::Result<T>`).
pub fn error_text<E: Display>(error: &E) -> String {
    error.to_string()
}

/// The outcome of a task that returns a `Result`, through the functions of [`task_output`] and
/// [`task_error`].
pub fn result_outcome_with<T, E>(
    result: std::result::Result<T, E>,
    output: fn(T) -> RunResult,
    error: fn(&E) -> String,
) -> RunResult {
    match result {
        Ok(value) => output(value),
        Err(e) => Err(RunError::Failed(error(&e))),
    }
}

/// Builds the JSON object of a call's arguments.
pub struct ArgsBuilder {
    task: &'static str,
    map: Map<String, Value>,
}

impl ArgsBuilder {
    /// Starts the arguments of task `task`.
    pub fn new(task: &'static str) -> Self {
        ArgsBuilder {
            task,
            map: Map::new(),
        }
    }

    /// Adds argument `name`.
    pub fn arg<T: Serialize>(mut self, name: &'static str, value: &T) -> Result<Self> {
        let value = serde_json::to_value(value).map_err(|source| Error::EncodeArg {
            task: self.task.to_string(),
            arg: name.to_string(),
            source,
        })?;
        self.map.insert(name.to_string(), value);
        Ok(self)
    }

    /// Adds argument `name` through its codec (see [`task_arg`]).
    pub fn arg_with<T>(
        mut self,
        name: &'static str,
        value: &T,
        codec: ArgCodec<T>,
    ) -> Result<Self> {
        let value = (codec.encode)(value).map_err(|source| Error::EncodeArg {
            task: self.task.to_string(),
            arg: name.to_string(),
            source,
        })?;
        self.map.insert(name.to_string(), value);
        Ok(self)
    }

    /// The finished object.
    pub fn finish(self) -> Value {
        Value::Object(self.map)
    }
}

/// Reads a stored argument object back into typed values.
pub struct ArgsReader {
    map: Map<String, Value>,
}

impl ArgsReader {
    /// Checks that `args` is a JSON object.
    pub fn new(args: Value) -> std::result::Result<Self, RunError> {
        match args {
            Value::Object(map) => Ok(ArgsReader { map }),
            other => Err(RunError::InvalidArgs(format!(
                "arguments must be a JSON object keyed by parameter name, found {other}"
            ))),
        }
    }

    /// Takes argument `name`. A missing argument reads as `null`, so that an `Option` parameter
    /// added in a new version accepts rows enqueued by the old one.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> std::result::Result<T, RunError> {
        match self.map.remove(name) {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| RunError::InvalidArgs(format!("argument `{name}`: {e}"))),
            None => serde_json::from_value(Value::Null)
                .map_err(|_| RunError::InvalidArgs(format!("argument `{name}` is missing"))),
        }
    }

    /// Takes argument `name` through its codec (see [`task_arg`]); a missing argument reads
    /// as `null`, as in [`take`](Self::take).
    pub fn take_with<T>(
        &mut self,
        name: &str,
        codec: ArgCodec<T>,
    ) -> std::result::Result<T, RunError> {
        match self.map.remove(name) {
            Some(value) => (codec.decode)(value)
                .map_err(|e| RunError::InvalidArgs(format!("argument `{name}`: {e}"))),
            None => (codec.decode)(Value::Null)
                .map_err(|_| RunError::InvalidArgs(format!("argument `{name}` is missing"))),
        }
    }

    /// Fails if arguments are left that the function does not take.
    pub fn finish(self) -> std::result::Result<(), RunError> {
        if self.map.is_empty() {
            return Ok(());
        }
        let extra: Vec<&str> = self.map.keys().map(String::as_str).collect();
        Err(RunError::InvalidArgs(format!(
            "unexpected argument{} {}",
            if extra.len() > 1 { "s" } else { "" },
            extra
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// The outcome of a task that returns a plain value.
pub fn value_outcome<T: Serialize>(value: T) -> RunResult {
    serde_json::to_value(value)
        .map_err(|e| RunError::Failed(format!("the task's result cannot be stored as JSON: {e}")))
}

/// The outcome of a task that returns a `Result`.
pub fn result_outcome<T: Serialize, E: Display>(result: std::result::Result<T, E>) -> RunResult {
    match result {
        Ok(value) => value_outcome(value),
        Err(e) => Err(RunError::Failed(e.to_string())),
    }
}
