//! The outbox table: its name, the SQL that creates it, and the
//! statements the consumer runs on it.

use std::fmt;

/// How much of a row's topic, event type and publish key is read: more
/// than any the hub takes (128 bytes), so a longer one is still refused.
const MAX_NAME_CHARS: usize = 1024;

/// The longest table name taken (schema and dot included), so that the
/// default publish key `outbox:TABLE:ID` stays within the hub's 128 bytes.
pub const MAX_TABLE_NAME_LEN: usize = 96;

/// An outbox table's name: `name` or `schema.name`, each part a lowercase
/// SQL identifier (`a`-`z`, `_`, then digits too), so that it can be
/// written into statements unquoted and means the same table in the
/// application's migrations as here.
///
/// ```
/// use tether_outbox::TableName;
///
/// assert!("tether_outbox".parse::<TableName>().is_ok());
/// assert!("shop.outbox".parse::<TableName>().is_ok());
/// assert!("Outbox".parse::<TableName>().is_err());
/// assert!("outbox; DROP TABLE orders".parse::<TableName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(String);

impl Default for TableName {
    fn default() -> TableName {
        TableName("tether_outbox".to_owned())
    }
}

impl std::str::FromStr for TableName {
    type Err = String;

    fn from_str(s: &str) -> Result<TableName, String> {
        if s.len() > MAX_TABLE_NAME_LEN {
            return Err(format!("a table name of at most {MAX_TABLE_NAME_LEN} bytes"));
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(format!(
                "{s:?} is not a table name: NAME or SCHEMA.NAME, each a lowercase identifier \
                 (a-z or _, then digits too)"
            ));
        }
        Ok(TableName(s.to_owned()))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lowercase unquoted SQL identifier of at most 63 bytes (PostgreSQL's
/// limit).
fn is_identifier(part: &str) -> bool {
    let mut bytes = part.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && part.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'_' | b'0'..=b'9'))
}

impl TableName {
    /// The name as written in SQL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its schema.
    fn bare(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or(&self.0)
    }

    /// The `NOTIFY` channel the table's trigger notifies: its full name.
    pub fn channel(&self) -> &str {
        &self.0
    }

    /// The publish key of row `id` that gives none of its own.
    pub fn default_key(&self, id: i64) -> String {
        format!("outbox:{}:{id}", self.0)
    }

    /// The SQL that creates the table, its index of pending rows and the
    /// trigger that wakes the consumer: for the application's own
    /// migrations (`tether_outbox::TableName::schema`), run once.
    ///
    /// ```
    /// let sql = tether_outbox::TableName::default().schema();
    /// assert!(sql.contains("CREATE TABLE tether_outbox ("));
    /// assert!(sql.contains("pg_notify('tether_outbox', '')"));
    /// ```
    pub fn schema(&self) -> String {
        let (table, bare, channel) = (self.as_str(), self.bare(), self.channel());
        format!(
            "CREATE TABLE {table} (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    event_type  text,
    data        text NOT NULL,
    publish_key text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    failed_at   timestamptz,
    failure     text
);
CREATE INDEX {bare}_pending ON {table} (id) WHERE failed_at IS NULL;
CREATE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER {bare}_notify AFTER INSERT ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify();
"
        )
    }

    /// The pending rows, oldest first, locked until the transaction ends;
    /// a row's data only if it is at most `$2` bytes (with its size), and
    /// its names cut to [`MAX_NAME_CHARS`] characters, so that a row
    /// written wrong costs no more memory than one written right (a name
    /// that long is refused by the publisher, cut or not).
    pub(crate) fn select_pending(&self) -> String {
        format!(
            "SELECT id, left(topic, {MAX_NAME_CHARS}), left(event_type, {MAX_NAME_CHARS}), \
             CASE WHEN octet_length(data) <= $2 THEN data END, \
             left(publish_key, {MAX_NAME_CHARS}), octet_length(data)::bigint FROM {} \
             WHERE failed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            self.0
        )
    }

    /// Deletes the rows whose publishes were acknowledged.
    pub(crate) fn delete_done(&self) -> String {
        format!("DELETE FROM {} WHERE id = ANY($1)", self.0)
    }

    /// Marks a row the hub refused, with the reason.
    pub(crate) fn mark_failed(&self) -> String {
        format!(
            "UPDATE {} SET failed_at = now(), failure = $2 WHERE id = $1",
            self.0
        )
    }

    /// The rows waiting to be published.
    pub(crate) fn count_pending(&self) -> String {
        format!("SELECT count(*) FROM {} WHERE failed_at IS NULL", self.0)
    }

    /// The key of the session-level advisory lock that makes one node at
    /// a time the table's consumer.
    pub(crate) fn lock_key(&self) -> String {
        format!("tether-outbox:{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["tether_outbox", "a", "_x9", "shop.outbox_2"] {
            assert!(good.parse::<TableName>().is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "", "9a", "Outbox", "a.b.c", "a b", "a;b", "\"a\"", ".a", "a.", &long,
        ] {
            assert!(bad.parse::<TableName>().is_err(), "{bad}");
        }
        let longest = format!("{}.{}", "a".repeat(47), "b".repeat(48));
        let table: TableName = longest.parse().unwrap();
        assert!(tether_hub_key_fits(&table.default_key(i64::MAX)));
    }

    /// The hub's rule for publish keys (1 to 128 visible ASCII bytes).
    fn tether_hub_key_fits(key: &str) -> bool {
        !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic())
    }

    #[test]
    fn a_schema_qualified_table() {
        let table: TableName = "shop.outbox".parse().unwrap();
        let sql = table.schema();
        assert!(sql.contains("CREATE INDEX outbox_pending ON shop.outbox"));
        assert!(sql.contains("CREATE FUNCTION shop.outbox_notify()"));
        assert!(sql.contains("pg_notify('shop.outbox', '')"));
        assert_eq!(table.default_key(7), "outbox:shop.outbox:7");
    }
}
