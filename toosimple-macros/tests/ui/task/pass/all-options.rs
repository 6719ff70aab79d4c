//! Every `#[task]` option reaches the registered definition.
use toosimple_core::{find_task, task};

#[task(name = "mail.send", queue = "emails", priority = -5, retries = -1, retry_delay = 2,
       unique = true, timeout = 30)]
pub async fn send(to: String) -> Result<(), String> {
    let _ = to;
    Ok(())
}

#[task(retries = 3, priority = 5, unique = false)]
fn other() {}

fn main() {
    assert_eq!(send::NAME, "mail.send");
    let def = find_task("mail.send").unwrap();
    assert_eq!(def.queue(), "emails");
    assert_eq!(def.priority(), -5);
    assert_eq!(def.retries(), -1);
    assert_eq!(def.retry_delay(), 2);
    assert!(def.is_unique());
    assert_eq!(def.timeout(), Some(30));
    let def = find_task("other").unwrap();
    assert_eq!((def.retries(), def.priority(), def.is_unique()), (3, 5, false));
}
