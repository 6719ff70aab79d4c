//! The command line's value parsers: each refuses what makes no sense and says what to write.
//!
//! They return `String` errors, which clap prints after "invalid value 'X' for '--flag'", and
//! exits 2 as for any other usage error.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What to write for a duration, said after every duration error.
const DURATION_EXAMPLES: &str =
    "write e.g. 500ms, 1s, 2m, 1h 30m, 7d, or a plain number of seconds (0.5)";

/// The shortest `--tick`: below it an idle worker polls its database in a busy loop (`--tick
/// 0` spun 1,500 rounds in 4 s).
pub(crate) const MIN_TICK: Duration = Duration::from_millis(10);

/// The command line's one duration syntax: humantime's (`500ms`, `1s`, `2m`, `1h 30m`, `7d`),
/// or a plain number, taken as seconds (`0.5`, `300`) as django-toosimple-q's flags are.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_nan() || seconds.is_infinite() {
            return Err(format!("{text:?} is not a duration: {DURATION_EXAMPLES}"));
        }
        if seconds < 0.0 {
            return Err(format!(
                "a duration cannot be negative: {DURATION_EXAMPLES}"
            ));
        }
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text} seconds is longer than a duration holds"));
    }
    humantime::parse_duration(text).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => {
            format!("{text:?} is longer than a duration holds")
        }
        other => format!("{other}: {DURATION_EXAMPLES}"),
    })
}

/// A TTL (`enqueue --ttl`, `worker --result-ttl`): a duration (`0` deletes once recorded), or
/// `keep` (also `-1`, django-pq's spelling) to keep until purged.
pub(crate) fn ttl(text: &str) -> Result<toosimple_core::Ttl, String> {
    match text.trim() {
        "keep" | "-1" => Ok(toosimple_core::Ttl::Keep),
        other => duration(other)
            .map(toosimple_core::Ttl::After)
            .map_err(|e| format!("{e}; or `keep` (-1) to keep it until purged")),
    }
}

/// A registered `#[hook]`, by name (`enqueue --hook`, `worker --error-hook`).
pub(crate) fn hook(name: &str) -> Result<toosimple_core::Hook, String> {
    toosimple_core::find_hook(name.trim())
        .copied()
        .map_err(|e| e.to_string())
}

/// A duration above zero (`enqueue --timeout`: a limit of 0 would fail every run).
pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    let limit = duration(text)?;
    if limit.is_zero() {
        return Err(format!(
            "a time limit of 0 fails every run: leave the flag out for the task's own, or \
             write e.g. 30s ({DURATION_EXAMPLES})"
        ));
    }
    Ok(limit)
}

/// `--tick`: a duration of at least [`MIN_TICK`].
pub(crate) fn tick(text: &str) -> Result<Duration, String> {
    let tick = duration(text)?;
    if tick < MIN_TICK {
        return Err(format!(
            "the tick must be at least {}: a shorter one has an idle worker poll the \
             database in a busy loop; write e.g. 1s (the default) or 100ms",
            humantime::format_duration(MIN_TICK)
        ));
    }
    Ok(tick)
}

/// `purge --older-than`: a duration with its unit. A bare number is refused although it
/// means seconds elsewhere: `purge --older-than 30` meant as 30 days would delete all but
/// the last 30 seconds' executions.
pub(crate) fn age(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>().is_ok() {
        return Err(format!(
            "{:?} has no unit: purge deletes executions, so say how old with a unit, e.g. \
             {0}d, {0}h, {0}m or {0}s",
            text.trim()
        ));
    }
    duration(text)
}

/// `--concurrency`: at least one slot (0 would run nothing).
pub(crate) fn concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(
            "a worker with no slots runs nothing: write 1 or more (the default is the number \
             of CPUs)"
                .to_string(),
        ),
        Ok(slots) => Ok(slots),
        Err(_) => Err("write a whole number of tasks run at once, 1 or more".to_string()),
    }
}

/// A queue name, one item of `--queue emails,default` (clap splits the commas).
pub(crate) fn queue(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(
            "an empty queue name: write names separated by commas (emails,default) or \
             repeat the flag"
                .to_string(),
        );
    }
    Ok(name.to_string())
}

/// `--label`: a worker's name in `status` and in the logs.
pub(crate) fn label(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a worker needs a name: write e.g. worker-{pid} (the default)".to_string());
    }
    Ok(text.to_string())
}

/// An execution's id (`requeue`, `cancel`): ids start at 1.
pub(crate) fn exec_id(text: &str) -> Result<i64, String> {
    match text.trim().trim_start_matches('#').parse::<i64>() {
        Ok(id) if id >= 1 => Ok(id),
        _ => Err(
            "write the execution's id, a number from 1 up, as `status --json` or the admin \
             shows it"
                .to_string(),
        ),
    }
}

/// `enqueue --due`: an RFC 3339 date.
pub(crate) fn due(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("{e}: write an RFC 3339 date such as 2030-01-01T08:00:00Z"))
}

/// `admin --bind`: an address and port.
#[cfg(feature = "admin")]
pub(crate) fn bind(text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        "write an address and port, e.g. 127.0.0.1:8001 (this machine only) or 0.0.0.0:8001"
            .to_string()
    })
}

/// `worker --metrics-bind`: an address and port.
pub(crate) fn socket_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        "write an address and port, e.g. 127.0.0.1:9464 (this machine only) or 0.0.0.0:9464"
            .to_string()
    })
}

/// `cluster --max-memory`: an amount of memory, `512MB`, `1.5GB`, `300MiB` or bytes.
pub(crate) fn bytes(text: &str) -> Result<u64, String> {
    const EXAMPLES: &str = "write e.g. 512MB, 1.5GB, 300MiB or a number of bytes";
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not an amount of memory: {EXAMPLES}"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("{other:?} is not a unit of memory: {EXAMPLES}")),
    };
    let bytes = number * unit;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} is no usable limit: {EXAMPLES}"));
    }
    Ok(bytes as u64)
}

/// `cluster --processes`, `worker --max-tasks`: a count from 1.
pub(crate) fn count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("write a whole number from 1 up".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_amounts_take_units() {
        assert_eq!(bytes("512MB"), Ok(512_000_000));
        assert_eq!(bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(bytes("300MiB"), Ok(300 * 1024 * 1024));
        assert_eq!(bytes("4096"), Ok(4096));
        assert!(
            bytes("12 parsecs")
                .unwrap_err()
                .contains("not a unit of memory")
        );
        assert!(bytes("0").unwrap_err().contains("no usable limit"));
        assert!(bytes("MB").unwrap_err().contains("not an amount"));
    }

    #[test]
    fn durations_take_units_or_plain_seconds() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("0.2"), Ok(Duration::from_millis(200)));
        for bad in ["-1", "inf", "NaN", "1x", "", "s"] {
            let error = duration(bad).unwrap_err();
            assert!(error.contains("write e.g. 500ms"), "{bad}: {error}");
        }
        assert!(
            duration("1e300")
                .unwrap_err()
                .contains("longer than a duration holds")
        );
    }

    #[test]
    fn a_tick_under_the_minimum_is_refused() {
        assert!(tick("0").unwrap_err().contains("busy loop"));
        assert!(tick("1ms").unwrap_err().contains("at least 10ms"));
        assert_eq!(tick("10ms"), Ok(MIN_TICK));
    }

    #[test]
    fn an_age_needs_its_unit() {
        assert!(age("30").unwrap_err().contains("30d, 30h, 30m or 30s"));
        assert_eq!(age("30d"), Ok(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn zero_slots_and_empty_names_are_refused() {
        assert!(concurrency("0").unwrap_err().contains("1 or more"));
        assert_eq!(concurrency("3"), Ok(3));
        assert!(queue(" ").unwrap_err().contains("empty queue name"));
        assert_eq!(queue(" emails "), Ok("emails".to_string()));
        assert!(label("").is_err());
        assert!(exec_id("0").is_err());
        assert_eq!(exec_id("#42"), Ok(42));
    }
}
