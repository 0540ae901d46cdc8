//! Options from a TOML file and from the environment, for a clap command.
//!
//! The file's keys are not a second list of options: each top-level key is
//! the long name of one of the command's options (`data-dir`, `threads`),
//! and what value it takes (`true`/`false` for a flag, one value, an array
//! for an option that repeats) is read from the option's definition. Each
//! entry becomes the arguments the command line would have
//! (`--data-dir=DIR`, `--trusted-origin=A --trusted-origin=B`), so clap
//! parses and checks the file's values as it does the command line's.
//!
//! The environment: each option can also be given as `TETHER_<NAME>`
//! (`TETHER_DATA_DIR`), through clap's `env`.

use std::any::TypeId;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, Command};
use toml::Value;
use toml::de::{DeTable, DeValue};

/// The prefix of each option's environment variable.
const ENV_PREFIX: &str = "TETHER_";

/// The environment variable of the option `--long`: `TETHER_` and the
/// name in capitals, `-` made `_`.
pub(crate) fn env_name(long: &str) -> String {
    format!("{ENV_PREFIX}{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// `cmd` with each of its options (help and version aside) also read from
/// its environment variable when the command line does not give it. A
/// variable that is set but empty counts as unset. Values are never shown
/// in the help (some are secrets).
pub(crate) fn with_env(cmd: Command) -> Command {
    cmd.mut_args(|arg| {
        if kind(&arg).is_none() {
            return arg;
        }
        let Some(name) = arg.get_long().map(env_name) else {
            return arg;
        };
        if std::env::var_os(&name).is_some_and(|value| value.is_empty()) {
            return arg;
        }
        arg.env(name).hide_env_values(true)
    })
}

/// The kind of value an option's definition asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    /// An integer.
    Integer,
    /// A number, integer or not.
    Number,
    /// A boolean (or the option's own words for it, a string).
    Bool,
    /// A string.
    Text,
}

/// What a key of the file stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A flag: `true` gives it, `false` leaves it out.
    Flag,
    /// An option given once.
    Single(Scalar),
    /// An option that repeats: an array.
    Many(Scalar),
}

/// What the file may say for `arg`; `None` for what it may not (help,
/// version).
fn kind(arg: &Arg) -> Option<Kind> {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Some(Kind::Flag),
        ArgAction::Set => Some(Kind::Single(scalar(arg))),
        ArgAction::Append => Some(Kind::Many(scalar(arg))),
        _ => None,
    }
}

/// The kind of one value of `arg`, from the type its parser makes.
fn scalar(arg: &Arg) -> Scalar {
    let made = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
    ];
    if integers.iter().any(|id| made == *id) {
        Scalar::Integer
    } else if made == TypeId::of::<f64>() || made == TypeId::of::<f32>() {
        Scalar::Number
    } else if made == TypeId::of::<bool>() {
        Scalar::Bool
    } else {
        Scalar::Text
    }
}

/// A problem with one entry of the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The line of the key, from 1.
    pub(crate) line: usize,
    /// The key.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: key `{}`: {}", self.line, self.key, self.message)
    }
}

/// Why a file gives no arguments.
#[derive(Debug)]
pub(crate) enum FileError {
    /// Not read: the message, which names the file.
    Read(String),
    /// Not TOML: the message, with its line.
    File(String),
    /// Entries that are not options or do not fit them.
    Entries(Vec<Problem>),
}

impl FileError {
    /// The error, each line of it that names an entry after the file's
    /// name.
    pub(crate) fn describe(&self, path: &Path) -> String {
        let file = path.display();
        match self {
            FileError::Read(message) => message.clone(),
            FileError::File(message) => format!("{file}: {message}"),
            FileError::Entries(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
                lines.join("\n")
            }
        }
    }
}

/// One entry of the file as arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The id of the option it sets.
    pub(crate) id: String,
    /// The arguments it stands for (none for a flag set to `false`).
    pub(crate) args: Vec<OsString>,
}

/// Reads the file at `path` (a regular file of at most
/// [`MAX_CONFIG_FILE`](tether_node::files::MAX_CONFIG_FILE) bytes) and turns it
/// into arguments of `cmd` (see [`arguments`]).
pub(crate) fn read(cmd: &Command, path: &Path, reserved: &[&str]) -> Result<Vec<Entry>, FileError> {
    let bytes = tether_node::files::read(path, tether_node::files::MAX_CONFIG_FILE, "a configuration file")
        .map_err(FileError::Read)?;
    let text = String::from_utf8(bytes).map_err(|e| FileError::File(not_utf8(e.as_bytes(), &e)))?;
    arguments(cmd, &text, reserved)
}

/// Where `bytes` stop being UTF-8, as an editor shows it: the line and
/// column (characters, from 1) of the first bad byte, and its offset.
fn not_utf8(bytes: &[u8], error: &std::string::FromUtf8Error) -> String {
    let at = error.utf8_error().valid_up_to();
    // Everything before `at` is valid UTF-8.
    let good = std::str::from_utf8(bytes.get(..at).unwrap_or_default()).unwrap_or_default();
    let line = good.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = good.rfind('\n').map_or(0, |i| i + 1);
    let column = good.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: not UTF-8 text (byte {at} of the file)")
}

/// The entries of the TOML document `text` as arguments of `cmd`, in the
/// order of the file; or every problem found, each with its key and line.
/// Each entry is checked alone against `cmd` (its type, then its value,
/// by the option's own parser); how entries go together is left to the
/// parse of all the arguments. Keys in `reserved` are options that cannot
/// be set from a file.
pub(crate) fn arguments(cmd: &Command, text: &str, reserved: &[&str]) -> Result<Vec<Entry>, FileError> {
    let values: toml::Table = toml::from_str(text).map_err(|e| FileError::File(e.to_string()))?;
    let spans = DeTable::parse(text).map_err(|e| FileError::File(e.to_string()))?;
    let mut keys: Vec<(usize, &str)> = spans
        .get_ref()
        .iter()
        .map(|(key, _)| (key.span().start, &**key.get_ref()))
        .collect();
    keys.sort_unstable();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (offset, key) in keys {
        let line = line_of(text, offset);
        let problem = |message: String| Problem {
            line,
            key: key.to_owned(),
            message,
        };
        let Some(value) = values.get(key) else {
            continue;
        };
        match entry(cmd, key, value, reserved) {
            Ok(entry) => entries.push(entry),
            Err(message) => problems.push(
                field_problem(cmd, key, value, spans.get_ref(), text).unwrap_or_else(|| problem(message)),
            ),
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(FileError::Entries(problems))
    }
}

/// The first field of a table-valued option (`[namespace.chat]`) that is
/// wrong on its own, named by its own line and key. In TOML a key written
/// below a table's header belongs to that table, so a top-level option
/// appended to a file that ends with a table lands in it: the header's
/// line would be the wrong one to blame. `None` when no field is wrong on
/// its own (then the fields are wrong together, and the header is right).
fn field_problem(
    cmd: &Command,
    key: &str,
    value: &Value,
    spans: &DeTable<'_>,
    text: &str,
) -> Option<Problem> {
    let Value::Table(tables) = value else {
        return None;
    };
    let DeValue::Table(spanned_tables) = spans.iter().find(|(k, _)| &**k.get_ref() == key)?.1.get_ref()
    else {
        return None;
    };
    for (name, fields) in tables {
        let Value::Table(fields) = fields else {
            continue;
        };
        let spanned_fields = spanned_tables
            .iter()
            .find(|(k, _)| &**k.get_ref() == name)
            .and_then(|(_, v)| match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            })?;
        for (field, field_value) in fields {
            let alone = toml::Table::from_iter([(field.clone(), field_value.clone())]);
            let table = toml::Table::from_iter([(name.clone(), Value::Table(alone))]);
            let Err(mut message) = entry(cmd, key, &Value::Table(table), &[]) else {
                continue;
            };
            let (spanned_key, _) = spanned_fields.iter().find(|(k, _)| &**k.get_ref() == field)?;
            if cmd
                .get_arguments()
                .any(|arg| arg.get_long() == Some(field.as_str()))
            {
                message.push_str(&format!(
                    " (`{field}` is an option of its own: written below the `[{key}.{name}]` \
                     header it belongs to that table; move it above the file's first table)"
                ));
            }
            return Some(Problem {
                line: line_of(text, spanned_key.span().start),
                key: format!("{key}.{name}.{field}"),
                message,
            });
        }
    }
    None
}

/// The line (from 1) of the byte at `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.bytes().take(offset).filter(|b| *b == b'\n').count() + 1
}

/// The entry `key = value` as arguments of `cmd`, checked alone.
fn entry(cmd: &Command, key: &str, value: &Value, reserved: &[&str]) -> Result<Entry, String> {
    if reserved.contains(&key) {
        return Err("cannot be set in a configuration file".to_owned());
    }
    let (arg, kind) = cmd
        .get_arguments()
        .find(|arg| arg.get_long() == Some(key))
        .and_then(|arg| Some((arg, kind(arg)?)))
        .ok_or_else(|| "not an option".to_owned())?;
    let option = format!("--{key}");
    let args: Vec<OsString> = match kind {
        Kind::Flag => match value {
            Value::Boolean(true) => vec![option.into()],
            Value::Boolean(false) => Vec::new(),
            other => return Err(format!("expected true or false, found {}", other.type_str())),
        },
        Kind::Single(scalar) => vec![format!("{option}={}", text(scalar, value)?).into()],
        Kind::Many(scalar) => match value {
            Value::Array(values) => values
                .iter()
                .map(|value| Ok(format!("{option}={}", text(scalar, value)?).into()))
                .collect::<Result<_, String>>()?,
            Value::Table(table) if scalar == Scalar::Text => table
                .iter()
                .map(|(name, fields)| Ok(format!("{option}={}", spec(name, fields)?).into()))
                .collect::<Result<_, String>>()?,
            other => return Err(format!("expected an array, found {}", other.type_str())),
        },
    };
    check(cmd, &args)?;
    Ok(Entry {
        id: arg.get_id().to_string(),
        args,
    })
}

/// A table of an option that repeats, `[option."NAME"]` with `key =
/// value` lines, as the one value `NAME key=value ...` (how `--namespace`
/// takes a namespace). Values are strings without spaces, numbers or
/// booleans.
fn spec(name: &str, fields: &Value) -> Result<String, String> {
    let Value::Table(fields) = fields else {
        return Err(format!("{name}: expected a table, found {}", fields.type_str()));
    };
    let mut words = vec![name.to_owned()];
    for (key, value) in fields {
        let value = match value {
            Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) && !s.contains(';') => {
                s.clone()
            }
            Value::Integer(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "{name}.{key}: expected a word, a number or a boolean, found {}",
                    match other {
                        Value::String(_) => "a string with spaces",
                        other => other.type_str(),
                    }
                ));
            }
        };
        words.push(format!("{key}={value}"));
    }
    Ok(words.join(" "))
}

/// The text of one value, if it is of the kind `scalar` asks for.
fn text(scalar: Scalar, value: &Value) -> Result<String, String> {
    match (scalar, value) {
        (Scalar::Integer | Scalar::Number, Value::Integer(n)) => Ok(n.to_string()),
        (Scalar::Number, Value::Float(x)) => Ok(x.to_string()),
        (Scalar::Bool, Value::Boolean(b)) => Ok(b.to_string()),
        (Scalar::Bool | Scalar::Text, Value::String(s)) => Ok(s.clone()),
        (scalar, other) => {
            let wanted = match scalar {
                Scalar::Integer => "an integer",
                Scalar::Number => "a number",
                Scalar::Bool => "true, false or a string",
                Scalar::Text => "a string",
            };
            Err(format!("expected {wanted}, found {}", other.type_str()))
        }
    }
}

/// Parses `args` alone with `cmd`: the option's parser judges the value.
/// What they would need or exclude from other options is not this entry's
/// business.
fn check(cmd: &Command, args: &[OsString]) -> Result<(), String> {
    let name = cmd.get_name().to_owned();
    let all = std::iter::once(OsString::from(name)).chain(args.iter().cloned());
    match cmd.clone().try_get_matches_from(all) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::MissingRequiredArgument | ErrorKind::ArgumentConflict
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(first_line(&e)),
    }
}

/// The first line of clap's message, without its `error: `.
pub(crate) fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .arg(
                Arg::new("port")
                    .long("port")
                    .value_parser(clap::value_parser!(u16)),
            )
            .arg(
                Arg::new("ratio")
                    .long("ratio")
                    .value_parser(clap::value_parser!(f64)),
            )
            .arg(Arg::new("name").long("name"))
            .arg(Arg::new("memory").long("memory").action(ArgAction::SetTrue))
            .arg(Arg::new("origin").long("origin").action(ArgAction::Append))
            .arg(
                Arg::new("cert")
                    .long("cert")
                    .requires("key")
                    .value_parser(clap::value_parser!(std::path::PathBuf)),
            )
            .arg(Arg::new("key").long("key"))
            .arg(Arg::new("config").long("config"))
            .arg(
                Arg::new("space")
                    .long("space")
                    .action(ArgAction::Append)
                    .value_parser(|spec: &str| {
                        let known = |word: &str| word.starts_with("a=") || word.starts_with("b=");
                        match spec.split(' ').skip(1).find(|word| !known(word)) {
                            Some(word) => Err(format!("unknown field {word:?}")),
                            None => Ok(spec.to_owned()),
                        }
                    }),
            )
    }

    fn args(text: &str) -> Result<Vec<Vec<String>>, FileError> {
        Ok(arguments(&cmd(), text, &["config"])?
            .into_iter()
            .map(|entry| {
                entry
                    .args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect()
            })
            .collect())
    }

    fn problems(text: &str) -> Vec<Problem> {
        match arguments(&cmd(), text, &["config"]) {
            Err(FileError::Entries(problems)) => problems,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_become_arguments_in_the_order_of_the_file() {
        let got = args("port = 80\nname = \"a b\"\nmemory = true\norigin = [\"x\", \"-y\"]\nratio = 0.5\n")
            .unwrap();
        assert_eq!(
            got,
            [
                vec!["--port=80".to_owned()],
                vec!["--name=a b".to_owned()],
                vec!["--memory".to_owned()],
                vec!["--origin=x".to_owned(), "--origin=-y".to_owned()],
                vec!["--ratio=0.5".to_owned()],
            ]
        );
        let entries = arguments(&cmd(), "port = 80", &[]).unwrap();
        assert_eq!(entries[0].id, "port");
    }

    #[test]
    fn a_false_flag_an_integer_for_a_number_and_an_empty_array() {
        let got = args("memory = false\nratio = 2\norigin = []").unwrap();
        assert_eq!(
            got,
            [Vec::<String>::new(), vec!["--ratio=2".to_owned()], Vec::new()]
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let found = problems("port = 80\n\nprot = 81\n[tls]\ncert = \"c\"\n");
        assert_eq!(
            found,
            [
                Problem {
                    line: 3,
                    key: "prot".into(),
                    message: "not an option".into()
                },
                Problem {
                    line: 4,
                    key: "tls".into(),
                    message: "not an option".into()
                },
            ]
        );
        assert_eq!(found[0].to_string(), "line 3: key `prot`: not an option");
        let found = problems("help = true\nconfig = \"x\"");
        assert_eq!(found[0].message, "not an option");
        assert_eq!(found[1].message, "cannot be set in a configuration file");
    }

    #[test]
    fn wrong_types_are_named_with_their_line() {
        let found =
            problems("port = \"80\"\nname = 3\nmemory = \"yes\"\norigin = \"x\"\nratio = [1]\nname2 = 1\n");
        let messages: Vec<(usize, &str, &str)> = found
            .iter()
            .map(|p| (p.line, p.key.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (1, "port", "expected an integer, found string"),
                (2, "name", "expected a string, found integer"),
                (3, "memory", "expected true or false, found string"),
                (4, "origin", "expected an array, found string"),
                (5, "ratio", "expected a number, found array"),
                (6, "name2", "not an option"),
            ]
        );
        let found = problems("origin = [\"a\", 2]");
        assert_eq!(found[0].message, "expected a string, found integer");
    }

    #[test]
    fn bad_values_are_judged_by_the_options_parser() {
        let found = problems("port = 70000");
        assert_eq!(found[0].line, 1);
        assert!(found[0].message.contains("--port"), "{}", found[0].message);
        assert!(found[0].message.contains("70000"), "{}", found[0].message);
    }

    #[test]
    fn requirements_are_left_to_the_whole_parse() {
        assert_eq!(
            args("cert = \"c.pem\"").unwrap(),
            [vec!["--cert=c.pem".to_owned()]]
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_named_by_line_and_column() {
        let mut bytes = b"port = 0\n# caf\xc3\xa9 ok\ndata-dir = \"ab".to_vec();
        bytes.extend_from_slice(b"\xff\"\n");
        let error = String::from_utf8(bytes.clone()).unwrap_err();
        assert_eq!(
            not_utf8(&bytes, &error),
            "line 3, column 15: not UTF-8 text (byte 34 of the file)"
        );
        let bytes = b"\x80".to_vec();
        let error = String::from_utf8(bytes.clone()).unwrap_err();
        assert_eq!(
            not_utf8(&bytes, &error),
            "line 1, column 1: not UTF-8 text (byte 0 of the file)"
        );
    }

    #[test]
    fn a_wrong_field_of_a_table_is_named_by_its_own_line() {
        let good = "port = 80\n[space.x]\na = 1\nb = \"two\"\n";
        assert_eq!(
            args(good).unwrap(),
            [
                vec!["--port=80".to_owned()],
                vec!["--space=x a=1 b=two".to_owned()]
            ]
        );
        // An option appended below the table's header belongs to the table.
        let found = problems(&format!("{good}port = 81\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].key.as_str()), (5, "space.x.port"));
        assert!(
            found[0].message.contains("`port` is an option of its own"),
            "{}",
            found[0].message
        );
        // A field that is no option is named without the hint.
        let found = problems("[space.y]\na = 1\n\nc = 3\n");
        assert_eq!((found[0].line, found[0].key.as_str()), (4, "space.y.c"));
        assert!(
            !found[0].message.contains("option of its own"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn toml_errors_have_their_line() {
        let Err(FileError::File(message)) = arguments(&cmd(), "port = 80\nport = 81\n", &[]) else {
            panic!("a duplicate key is an error");
        };
        assert!(message.contains("line 2"), "{message}");
        let Err(FileError::File(message)) = arguments(&cmd(), "a =\n", &[]) else {
            panic!("a missing value is an error");
        };
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn environment_names() {
        assert_eq!(env_name("data-dir"), "TETHER_DATA_DIR");
        assert_eq!(env_name("port"), "TETHER_PORT");
    }
}
