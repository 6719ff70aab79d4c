//! Hooks: registered functions a worker calls with a finished execution (django-q's
//! `hook=`, django-pq's `exc_handler`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use crate::TaskExec;
use crate::error::{Error, Result};

/// A registered hook: a plain `fn` taking the finished [`TaskExec`], made by
/// [`#[hook]`](crate::hook) and named by its module's `HOOK` constant.
///
/// A worker calls it after it has recorded the execution's outcome (any end state:
/// succeeded, failed, invalid, interrupted or cancelled); what the hook does or how it ends
/// never changes that outcome. A hook that returns an `Err` or panics is logged and its error
/// kept in the execution's [`hook_error`](TaskExec::hook_error).
///
/// ```no_run
/// use toosimple_core::{TaskExec, hook, task};
///
/// #[hook]
/// fn notify(exec: &TaskExec) -> Result<(), String> {
///     println!("{} ended {}", exec.task_name, exec.state);
///     Ok(())
/// }
///
/// #[task(hook = notify)] // every call of `send`
/// fn send(to: String) {}
///
/// #[task]
/// fn report() {}
///
/// # fn main() -> Result<(), toosimple_core::Error> {
/// report::with().hook(notify::HOOK).queue()?; // one call of `report`
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct Hook {
    name: &'static str,
    run: fn(&TaskExec) -> std::result::Result<(), String>,
    location: &'static str,
}

impl Hook {
    /// A hook named `name` that calls `run`, defined at `location` (`file:line`). Not API:
    /// `#[hook]` makes them, and registers them, so that workers find them by name.
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        run: fn(&TaskExec) -> std::result::Result<(), String>,
        location: &'static str,
    ) -> Hook {
        Hook {
            name,
            run,
            location,
        }
    }

    /// The name rows store, and workers find it by.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Where it is defined (`file:line`).
    pub const fn location(&self) -> &'static str {
        self.location
    }

    /// Calls the hook with `exec`; its `Err` as text. A panic is not caught here (the worker
    /// catches it).
    pub fn call(&self, exec: &TaskExec) -> std::result::Result<(), String> {
        (self.run)(exec)
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish()
    }
}

/// Two hooks are the same when they have the same name: names are unique in a program.
impl PartialEq for Hook {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Hook {}

inventory::collect!(Hook);

struct Registry {
    by_name: BTreeMap<&'static str, &'static Hook>,
}

/// Every hook linked into this program, sorted by name; fails when two share a name.
pub fn hooks() -> Result<Vec<&'static Hook>> {
    Ok(registry()?.by_name.values().copied().collect())
}

/// The hook registered under `name`.
///
/// # Errors
/// [`Error::UnknownHook`] when no linked `#[hook]` has that name.
pub fn find_hook(name: &str) -> Result<&'static Hook> {
    let registry = registry()?;
    registry
        .by_name
        .get(name)
        .copied()
        .ok_or_else(|| Error::UnknownHook {
            name: name.to_string(),
            known: registry.by_name.keys().map(|k| k.to_string()).collect(),
        })
}

fn registry() -> Result<&'static Registry> {
    static REGISTRY: OnceLock<std::result::Result<Registry, (&str, &str, &str)>> = OnceLock::new();
    let built = REGISTRY.get_or_init(|| {
        let mut all: Vec<&'static Hook> = inventory::iter::<Hook>.into_iter().collect();
        // Sorted, so that a duplicate's error names the same pair whatever the link order.
        all.sort_by_key(|h| (h.name, h.location));
        let mut by_name = BTreeMap::new();
        for hook in all {
            if let Some(first) = by_name.insert(hook.name, hook) {
                return Err((hook.name, first.location, hook.location));
            }
        }
        Ok(Registry { by_name })
    });
    built
        .as_ref()
        .map_err(|(name, first, second)| Error::DuplicateHook {
            name: name.to_string(),
            first: first.to_string(),
            second: second.to_string(),
        })
}

/// What a hook function may return: nothing, or a `Result<(), E>` whose error is displayable.
#[diagnostic::on_unimplemented(
    message = "a hook returns `()` or `Result<(), E>` with `E: Display`, not `{Self}`",
    label = "the hook's error is recorded as text",
    note = "a hook's outcome is only logged and kept in `hook_error`: return `()`, or `Err(...)` to say it failed"
)]
pub trait HookOutput {
    /// The outcome as the worker records it.
    fn into_hook_result(self) -> std::result::Result<(), String>;
}

impl HookOutput for () {
    fn into_hook_result(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> HookOutput for std::result::Result<(), E> {
    fn into_hook_result(self) -> std::result::Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}
