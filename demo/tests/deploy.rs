//! docker-compose.yml, the Dockerfile and the README's shell commands only use commands,
//! flags and environment variables that exist. (No Docker engine runs here: `.ci/run`
//! validates the compose file's syntax with `docker-compose config`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `demo <args> --help`, or `demo --help` with no args: what the binary documents.
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(args)
        .arg("--help")
        .env("TOOSIMPLE_DATABASE_URL", "sqlite://:memory:")
        .output()
        .expect("run demo --help");
    assert!(output.status.success(), "demo {args:?} --help exits 0");
    String::from_utf8(output.stdout).unwrap()
}

/// Every Rust source of the workspace, concatenated: where environment variables are read.
fn sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut all = String::new();
    for entry in std::fs::read_dir(root()).unwrap().map(Result::unwrap) {
        let src = entry.path().join("src");
        if src.is_dir() {
            walk(&src, &mut all);
        }
    }
    all
}

/// Checks that `args`, a `demo` command line, names a command and flags `demo --help` lists.
fn assert_documented(args: &[String], top_help: &str) {
    let Some(first) = args.first() else { return };
    let sub_help = if first.starts_with('-') {
        top_help.to_string()
    } else {
        assert!(
            top_help
                .lines()
                .any(|l| l.trim_start().starts_with(first.as_str()))
                || top_help.contains(&format!("demo {first}")),
            "`demo {first}` is not a command of `demo --help`:\n{top_help}"
        );
        if first == "tour" {
            top_help.to_string()
        } else {
            let help_of_first = help(&[first.as_str()]);
            // A command with subcommands of its own (`schedule add`): that one's help.
            match args.get(1) {
                Some(second)
                    if !second.starts_with('-')
                        && help_of_first.contains("Commands:")
                        && help_of_first
                            .lines()
                            .any(|l| l.trim_start().starts_with(&format!("{second} "))) =>
                {
                    help(&[first.as_str(), second.as_str()])
                }
                _ => help_of_first,
            }
        }
    };
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        assert!(
            sub_help.contains(flag),
            "`{flag}` (in `demo {}`) is not in its --help:\n{sub_help}",
            args.join(" ")
        );
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect(),
        Value::String(text) => text.split_whitespace().map(String::from).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The `demo` arguments in a shell line such as `exec demo worker --label "x"`.
fn demo_args(shell: &str) -> Option<Vec<String>> {
    let words: Vec<String> = shell
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .collect();
    let start = words.iter().position(|w| w == "demo")?;
    Some(
        words[start + 1..]
            .iter()
            .take_while(|w| !w.starts_with('#'))
            .cloned()
            .collect(),
    )
}

#[test]
fn compose_commands_and_environment_exist() {
    let compose: Value = serde_yaml::from_str(&read("docker-compose.yml")).unwrap();
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["mailpit", "migrate", "postgres", "web", "worker"])
    );
    let top_help = help(&[]);
    let code = sources();
    let mut checked = 0;
    for name in ["migrate", "web", "worker"] {
        let service = &services[name];
        assert_eq!(
            service["build"].as_str(),
            Some("."),
            "{name} builds the Dockerfile"
        );
        let args = if let Some(command) = service.get("command") {
            strings(command)
        } else {
            let entrypoint = strings(&service["entrypoint"]);
            assert_eq!(&entrypoint[..2], ["/bin/sh", "-c"], "{name}");
            demo_args(&entrypoint[2]).expect("the entrypoint runs demo")
        };
        assert_documented(&args, &top_help);
        checked += 1;
        for key in service["environment"].as_mapping().unwrap().keys() {
            let key = key.as_str().unwrap();
            assert!(
                top_help.contains(key) && code.contains(&format!("\"{key}\"")),
                "{name} sets {key}, which neither `demo --help` documents nor the code reads"
            );
        }
    }
    assert_eq!(checked, 3);
    assert_eq!(services["worker"]["deploy"]["replicas"].as_i64(), Some(2));
    assert!(services["postgres"]["healthcheck"]["test"].is_sequence());
    assert!(compose["volumes"].get("pgdata").is_some(), "a named volume");
    let url = services["worker"]["environment"]["TOOSIMPLE_SMTP_URL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("smtp://mailpit:"), "{url}");
}

#[test]
fn dockerfile_builds_demo_in_release_and_runs_it_unprivileged() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
    assert!(dockerfile.contains("cargo build --release --locked -p demo"));
    assert!(dockerfile.contains("ENTRYPOINT [\"demo\"]"));
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    for line in dockerfile.lines().filter(|l| l.starts_with("CMD ")) {
        let args: Vec<String> = serde_yaml::from_str(line.trim_start_matches("CMD ")).unwrap();
        assert_documented(&args, &help(&[]));
    }
}

#[test]
fn readme_shell_commands_exist() {
    let readme = read("README.md");
    let top_help = help(&[]);
    let mut in_sh = false;
    let mut commands = 0;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim();
        if let Some(rest) = line.strip_prefix("cargo run -p demo") {
            let args: Vec<String> = rest
                .trim_start()
                .trim_start_matches("--")
                .split_whitespace()
                .map(|w| w.trim_matches('\'').to_string())
                .collect();
            assert_documented(&args, &top_help);
            commands += 1;
        } else if let Some(args) = line.strip_prefix("demo ").map(|_| demo_args(line).unwrap()) {
            assert_documented(&args, &top_help);
            commands += 1;
        } else if line.starts_with("cargo ") {
            // Each member's package is named after its folder.
            let manifest = read("Cargo.toml");
            let members = manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("members = ["))
                .expect("the workspace lists its members");
            let package_ok = !line.contains(" -p ")
                || members
                    .trim_end_matches(']')
                    .split(',')
                    .map(|m| m.trim().trim_matches('"'))
                    .any(|p| {
                        line.split_whitespace()
                            .collect::<Vec<_>>()
                            .windows(2)
                            .any(|w| w == ["-p", p])
                    });
            assert!(package_ok, "unknown package in `{line}`");
        }
    }
    assert!(commands >= 3, "the README shows how to run the demo");
}

/// Finding: the README sent readers to `shared/seeds/`, files outside the repository. Every
/// repository path it names (a lowercase relative path in backticks, or a relative link)
/// exists.
#[test]
fn readme_paths_exist() {
    // Prose only: code blocks hold commands and URLs, checked by the tests above.
    let mut in_code = false;
    let readme: String = read("README.md")
        .lines()
        .filter(|line| {
            in_code ^= line.starts_with("```");
            !in_code && !line.starts_with("```")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let is_path = |text: &str| {
        text.contains('/')
            && !text.starts_with('/')
            && !text.starts_with("./")
            && text.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '/' | '.' | '_' | '-')
            })
    };
    let mut paths: Vec<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|text| is_path(text))
        .collect();
    paths.extend(
        readme
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
            .filter(|target| !target.contains(':') && !target.starts_with('#'))
            .map(|target| target.split('#').next().unwrap()),
    );
    assert!(paths.contains(&".ci/run"), "{paths:?}");
    // What the tests write (screenshots, screen captures) is not in the repository.
    let missing: Vec<&&str> = paths
        .iter()
        .filter(|p| !p.starts_with("test-artifacts/") && !root().join(p).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the README names missing paths: {missing:?}"
    );
}
