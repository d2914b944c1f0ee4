//! A request limit as configured: requests per window.

use std::time::Duration;

/// A limit as configured: `600/60s`, or off (`off`, `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Off,
    Every { quota: u32, window: Duration },
}

impl RateLimit {
    /// `600/60s` (a bare window is seconds), `off` or `0`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Some(Self::Off);
        }
        let (quota, window) = text.split_once('/')?;
        let quota: u32 = quota.trim().parse().ok().filter(|q| *q > 0)?;
        let window = super::parse_duration(window).filter(|w| {
            w.subsec_nanos() == 0
                && *w >= Duration::from_secs(1)
                && *w <= Duration::from_secs(86_400)
        })?;
        Some(Self::Every { quota, window })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Every { quota, window } => {
                write!(f, "{quota}/{}", super::show_duration(*window))
            }
        }
    }
}
