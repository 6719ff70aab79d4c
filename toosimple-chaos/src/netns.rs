//! A network namespace joined to this host by a veth pair: a worker inside reaches the
//! database only over the pair, so bringing the host's end down partitions it for real (its
//! packets are dropped, its connections hang, nothing tells it) and bringing it up heals it.

use std::process::Command;

use crate::postgres::succeeds;

/// A namespace and its veth pair, deleted when dropped.
pub struct Partitionable {
    name: String,
    host_end: String,
    host_address: String,
}

impl Partitionable {
    /// Creates the namespace `tsc<pid>` with its pair on a /30 picked from the pid. Needs root
    /// and `ip`; errs with the failed step.
    pub fn create() -> Result<Partitionable, String> {
        let pid = std::process::id();
        let name = format!("tsc{pid}");
        let host_end = format!("tsc{pid}h");
        let inner_end = format!("tsc{pid}n");
        // A /30 per pid, so that two runs at once do not share addresses.
        let subnet = pid % 16_000;
        let (a, b) = (subnet / 64, (subnet % 64) * 4);
        let host_address = format!("10.{}.{a}.{}", 200 + a / 250, b + 1);
        let inner_address = format!("10.{}.{a}.{}", 200 + a / 250, b + 2);
        let partitionable = Partitionable {
            name: name.clone(),
            host_end: host_end.clone(),
            host_address: host_address.clone(),
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", &name],
            vec![
                "link", "add", &host_end, "type", "veth", "peer", "name", &inner_end,
            ],
            vec!["link", "set", &inner_end, "netns", &name],
            vec![
                "addr",
                "add",
                &format!("{host_address}/30"),
                "dev",
                &host_end,
            ],
            vec!["link", "set", &host_end, "up"],
            vec![
                "netns",
                "exec",
                &name,
                "ip",
                "addr",
                "add",
                &format!("{inner_address}/30"),
                "dev",
                &inner_end,
            ],
            vec![
                "netns", "exec", &name, "ip", "link", "set", &inner_end, "up",
            ],
            vec!["netns", "exec", &name, "ip", "link", "set", "lo", "up"],
        ]
        .into_iter()
        .map(|step| step.into_iter().map(str::to_string).collect())
        .collect();
        for step in steps {
            let output = Command::new("ip")
                .args(&step)
                .output()
                .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "ip {} failed (partitions need root): {}",
                    step.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(partitionable)
    }

    /// The host's address on the pair: where a server must listen for the worker inside.
    pub fn host_address(&self) -> &str {
        &self.host_address
    }

    /// A command running `program` inside the namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's).
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Cuts (`false`) or restores (`true`) the link.
    pub fn set_link(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        if succeeds(Command::new("ip").args(["link", "set", &self.host_end, state])) {
            Ok(())
        } else {
            Err(format!("cannot set {} {state}", self.host_end))
        }
    }
}

impl Drop for Partitionable {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair with it.
        let _ = succeeds(Command::new("ip").args(["netns", "del", &self.name]));
        let _ = succeeds(Command::new("ip").args(["link", "del", &self.host_end]));
    }
}
