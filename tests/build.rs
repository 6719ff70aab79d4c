//! Marks the Chromium end-to-end test ignored, with its reason, on a machine without Chromium:
//! a test that returns early counts as passed, and nextest hides what it prints, so a skip
//! must show in the summary instead. In CI (`CI=true`) the cfg is never set, so the test runs
//! and fails there without a browser.

use std::path::Path;

/// Where the browser test finds Debian's `chromium` and `chromium-driver` packages.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chromium_missing)");
    println!("cargo::rerun-if-env-changed=CI");
    // Installing or removing the packages changes the folder, which reruns this script.
    println!("cargo::rerun-if-changed=/usr/bin");
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let missing = !(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists());
    if missing && !ci {
        println!("cargo::rustc-cfg=chromium_missing");
    }
}
