//! The values every group of `tether serve`'s options parses: sizes and
//! counts within bounds, durations in seconds, on/off, secrets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Secret, String> {
        if s.is_empty() {
            return Err("the token is empty".to_owned());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// A KiB, a MiB and a GiB, for the bounds of the size options.
pub(crate) const KIB: u64 = 1 << 10;
pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const GIB: u64 = 1 << 30;
/// The bound of the options that size what is held in memory for a
/// connection or a topic (64 GiB): a benchmark keeps 4 GiB of backlog.
pub(crate) const MEMORY: u64 = 1 << 36;

/// A count or size option's parser: a whole number from `min` to `max`
/// (a larger one, say 9223372036854775807, is refused naming the range,
/// rather than taken as "no limit" or wrapped).
pub(crate) fn whole<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |text: &str| {
        let outside = || format!("expected a whole number from {min} to {max}");
        let n: u64 = text.trim().parse().map_err(|_| outside())?;
        if !(min..=max).contains(&n) {
            return Err(outside());
        }
        T::try_from(n).map_err(|_| outside())
    }
}

/// The longest duration any option takes: a day. Beyond it a timer means
/// "never", which each option spells `0` where it allows it.
pub(crate) const MAX_SECONDS: f64 = 86_400.0;

/// An on/off option: `on` or `off` (`true` and `false`, as a
/// configuration file's booleans say).
pub(crate) fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        // true and false: what a configuration file's booleans say.
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{text:?} is neither on nor off")),
    }
}

/// A duration option: seconds from 0 to a day, fractions allowed.
pub(crate) fn parse_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(format!("{text} is outside 0 to {MAX_SECONDS} seconds"));
    }
    Ok(seconds)
}

/// A duration option's parser for a range that excludes 0 or stops short
/// of a day: seconds from `min` to `max`, fractions allowed.
pub(crate) fn seconds_between(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (min..=max).contains(s))
            .ok_or_else(|| format!("expected seconds, {min} to {max}"))
    }
}

/// A duration option's value as a `Duration`.
pub(crate) fn seconds(s: f64) -> Duration {
    // parse_seconds has bounded it; anything else is no time at all.
    Duration::try_from_secs_f64(s.clamp(0.0, MAX_SECONDS)).unwrap_or(Duration::ZERO)
}

/// A duration option whose 0 means "none".
pub(crate) fn optional_seconds(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| seconds(s))
}
