//! The `tether` binary's code layout, for the packaged release builds on
//! x86_64 Linux (GNU), opt-in with `TETHER_CODE_LAYOUT=on` (set by
//! `packaging/build.sh`, with which `packaging/release.sh`, the Debian
//! package and `.ci/run` build the binary they ship or test): the functions
//! that run when the server starts and serves (`layout/hot-functions.txt`, written by `benches/hot-functions.sh`) go
//! together at the start of the code, and relative relocations are packed
//! (`-z pack-relative-relocs`) where the C library can read them (glibc
//! 2.36 or later). Neither changes what the program does; both change which
//! pages of the executable a running server maps in: the kernel maps 64 KiB
//! of an executable's cached pages at each fault, so code spread over the
//! 10 MB of the binary made an idle hub keep 3 MB of it resident, and the
//! loader read 400 KB of unpacked relocations. Measured in benches/README.md
//! ("Code layout").
//!
//! Without `TETHER_CODE_LAYOUT=on` (an embedder's or a contributor's
//! `cargo build --release`, `cargo install`) the binary is built without
//! either, so no linker script is needed: the same program, laid out by the
//! linker alone. A linker that takes no linker script (mold) is skipped even
//! when it is on.
//!
//! The list names functions as the v0 mangling does (`.cargo/config.toml`
//! asks for it); a `RUSTFLAGS` of one's own replaces that setting, and the
//! list then finds only the standard library's functions: the binary is the
//! same program, laid out as without the list.
//!
//! It also says what `tether version` prints: the commit the binary is
//! built from (`git rev-parse`, "unknown" outside a checkout or without
//! git) and the build date, which is `SOURCE_DATE_EPOCH` when set, else
//! the commit's date, never the clock: a release built twice from one
//! commit is the same binary, byte for byte.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() -> std::io::Result<()> {
    build_info();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=layout/hot-functions.txt");
    println!("cargo:rerun-if-env-changed=TETHER_CODE_LAYOUT");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("TETHER_CODE_LAYOUT") == "on"
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("mold");
    if !wanted {
        return Ok(());
    }
    let manifest = PathBuf::from(var("CARGO_MANIFEST_DIR"));
    let list = fs::read_to_string(manifest.join("layout/hot-functions.txt"))?;
    let script = PathBuf::from(var("OUT_DIR")).join("hot-functions.ld");
    fs::write(&script, linker_script(&list))?;
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    if var("HOST") == var("TARGET") && host_glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    Ok(())
}

/// A script that puts the functions the list names at the start of
/// `.text` (each pattern matched against the function's own section,
/// `.text.NAME`, or `.text.unlikely.NAME` for one the compiler takes as
/// cold), in the list's order; `INSERT` keeps the linker's own layout for
/// everything else, and the code stays in the one `.text` section (which
/// valgrind needs to name the functions in it).
fn linker_script(list: &str) -> String {
    let mut script = String::from("SECTIONS {\n  .text : {\n");
    for name in list.lines().map(str::trim) {
        if name.is_empty() || name.starts_with('#') || !is_pattern(name) {
            continue;
        }
        let _ = writeln!(script, "    *(.text.{name} .text.unlikely.{name})");
    }
    script.push_str("  }\n} INSERT AFTER .init;\n");
    script
}

/// Mangled names are made of these; anything else (a space, a parenthesis,
/// a quote) would end the pattern inside the script, so such a line is left
/// out rather than trusted.
fn is_pattern(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.' | b'*'))
}

/// Whether the C library of the machine building (and so, when it is not
/// cross-compiling, of the one that runs the binary it builds) reads packed
/// relocations: glibc 2.36 or later (`getconf GNU_LIBC_VERSION`).
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// Sets `TETHER_COMMIT` and `TETHER_BUILD_DATE` for the program (see the
/// module's docs), and has cargo run this again when the commit changes.
fn build_info() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let text = text.trim();
        (out.status.success() && !text.is_empty()).then(|| text.to_owned())
    };
    // HEAD names the branch; the branch's file (or packed-refs, once git
    // packs it) changes with each commit on it.
    for path in ["HEAD", "packed-refs"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={file}");
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    let epoch = env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct"]))
        .and_then(|s| s.trim().parse::<i64>().ok());
    let date = epoch.map_or_else(|| "unknown".to_owned(), date_of);
    println!("cargo:rustc-env=TETHER_COMMIT={commit}");
    println!("cargo:rustc-env=TETHER_BUILD_DATE={date}");
}

/// The UTC date of a Unix time, `YYYY-MM-DD` (the proleptic Gregorian
/// calendar, counted from the days since 1970-01-01 in eras of 400
/// years, each 146 097 days long).
fn date_of(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    // Days since 0000-03-01: a year that starts in March puts the leap
    // day at its end.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
