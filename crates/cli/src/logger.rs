//! A minimal logger: level, target and message on stderr, with the time
//! since start.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

struct StderrLogger {
    start: Instant,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let elapsed = self.start.elapsed();
            let _ = writeln!(
                std::io::stderr().lock(),
                "{:>5}.{:03} {:<5} {}: {}",
                elapsed.as_secs(),
                elapsed.subsec_millis(),
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` (once; later calls only change the level).
pub(crate) fn init(level: log::LevelFilter) {
    static LOGGER: OnceLock<StderrLogger> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| StderrLogger {
        start: Instant::now(),
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}
