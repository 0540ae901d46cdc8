//! `tether serve --log-format json`: the start banner (where the server
//! listens) as one JSON object on standard output, where scripts wait for
//! it, so that a collector reading both streams sees only JSON. Its
//! `message` is the text banner's first line, which holds the URL that
//! scripts read the port from.

use std::io::Write;

use tether_node::{Announce, Banner};

use crate::logger::JsonLine;

/// Says the banner as one JSON line on standard output.
pub(crate) fn json() -> Announce {
    Announce::new(|banner| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line(banner).as_bytes());
        let _ = out.flush();
    })
}

/// The banner's line: `kind` `start`, the `message`, `url`, `serves`,
/// the other listeners' URLs when there are any, and `hooks` (an object:
/// each hook's URL by its name) when there are hooks.
fn line(banner: &Banner) -> String {
    let mut line = JsonLine::new("start", "INFO");
    line.field("message", &banner.first_line());
    line.field("url", &banner.url);
    line.field("serves", banner.serves);
    for (name, value) in [
        ("tls_url", &banner.tls_url),
        ("http3_url", &banner.http3_url),
        ("metrics_url", &banner.metrics_url),
        ("admin_url", &banner.admin_url),
    ] {
        if let Some(value) = value {
            line.field(name, value);
        }
    }
    if !banner.hooks.is_empty() {
        line.object(
            "hooks",
            banner.hooks.iter().map(|(name, url)| (*name, url.as_str())),
        );
    }
    line.finish()
}
