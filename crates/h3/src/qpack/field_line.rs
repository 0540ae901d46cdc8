//! Encoded field sections (RFC 9204 §4.5): the prefix, then field line
//! representations referring to the static table, the dynamic table or
//! neither.

use tether_h2::hpack::Field;

use super::literal::{StringLimits, read_int, read_string};
use super::static_table;
use super::table::{DynamicTable, ENTRY_OVERHEAD};
use crate::error::Violation;

/// A field section's prefix (§4.5.1), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// How many inserts the section needs.
    pub(crate) required_insert_count: u64,
    /// The base of its relative and post-base indexes.
    pub(crate) base: u64,
}

/// Reads the prefix at the start of `section` (§4.5.1.1 and §4.5.1.2);
/// `pos` is left after it.
pub(crate) fn read_prefix(
    section: &[u8],
    pos: &mut usize,
    max_capacity: u64,
    total_inserts: u64,
) -> Result<Prefix, Violation> {
    let encoded = read_int(section, pos, 8)?;
    let required_insert_count =
        decode_required_insert_count(encoded, max_capacity / ENTRY_OVERHEAD, total_inserts)?;
    let sign = section.get(*pos).is_some_and(|&b| b & 0x80 != 0);
    let delta = read_int(section, pos, 7)?;
    let base = if sign {
        // Base = RIC - Delta - 1, which may not go below 0.
        required_insert_count
            .checked_sub(delta)
            .and_then(|b| b.checked_sub(1))
            .ok_or(Violation::InvalidBase)?
    } else {
        required_insert_count
            .checked_add(delta)
            .ok_or(Violation::InvalidBase)?
    };
    Ok(Prefix {
        required_insert_count,
        base,
    })
}

/// §4.5.1.1: the Required Insert Count from its encoding, modulo twice the
/// table's maximum number of entries.
fn decode_required_insert_count(
    encoded: u64,
    max_entries: u64,
    total_inserts: u64,
) -> Result<u64, Violation> {
    if encoded == 0 {
        return Ok(0);
    }
    let invalid = Violation::InvalidRequiredInsertCount(encoded);
    let full_range = max_entries.checked_mul(2).ok_or(invalid)?;
    if encoded > full_range {
        return Err(invalid);
    }
    let max_value = total_inserts.checked_add(max_entries).ok_or(invalid)?;
    let max_wrapped = (max_value / full_range) * full_range;
    let mut count = max_wrapped.checked_add(encoded - 1).ok_or(invalid)?;
    if count > max_value {
        if count <= full_range {
            return Err(invalid);
        }
        count -= full_range;
    }
    if count == 0 {
        return Err(invalid);
    }
    Ok(count)
}

/// What decoding the lines may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SectionLimits {
    /// The largest decoded section: name + value + 32 per line.
    pub(crate) max_section: usize,
    /// The most bytes one string may take on the wire.
    pub(crate) max_string: u64,
}

/// Decodes the field lines after the prefix, checking every reference
/// against the table and the prefix.
pub(crate) fn read_lines(
    section: &[u8],
    mut pos: usize,
    prefix: Prefix,
    table: &DynamicTable,
    limits: SectionLimits,
) -> Result<Vec<Field>, Violation> {
    let mut fields = Vec::new();
    let mut budget = limits.max_section;
    let mut largest_reference: Option<u64> = None;
    let overhead = usize::try_from(ENTRY_OVERHEAD).unwrap_or(usize::MAX);

    // A dynamic entry by absolute index: below the Required Insert Count
    // and still in the table.
    let mut dynamic = |absolute: Option<u64>| -> Result<(&[u8], &[u8]), Violation> {
        let absolute = absolute.ok_or(Violation::InvalidDynamicIndex(u64::MAX))?;
        if absolute >= prefix.required_insert_count {
            return Err(Violation::InvalidDynamicIndex(absolute));
        }
        let entry = table
            .get(absolute)
            .ok_or(Violation::InvalidDynamicIndex(absolute))?;
        largest_reference = Some(largest_reference.map_or(absolute, |l| l.max(absolute)));
        Ok(entry)
    };
    let relative = |index: u64| prefix.base.checked_sub(index)?.checked_sub(1);
    let post_base = |index: u64| prefix.base.checked_add(index);
    let static_entry = |index: u64| static_table::get(index).ok_or(Violation::InvalidStaticIndex(index));

    while pos < section.len() {
        let first = *section.get(pos).ok_or(Violation::QpackTruncated)?;
        // The name, and either the value or how to read it.
        let (field, literal_value): (Field, bool) = if first & 0x80 != 0 {
            // Indexed Field Line (§4.5.2).
            let index = read_int(section, &mut pos, 6)?;
            let (name, value) = if first & 0x40 != 0 {
                static_entry(index)?
            } else {
                dynamic(relative(index))?
            };
            (Field::new(name, value), false)
        } else if first & 0x40 != 0 {
            // Literal Field Line with Name Reference (§4.5.4).
            let index = read_int(section, &mut pos, 4)?;
            let (name, _) = if first & 0x10 != 0 {
                static_entry(index)?
            } else {
                dynamic(relative(index))?
            };
            let mut field = Field::new(name, Vec::new());
            field.never_indexed = first & 0x20 != 0;
            (field, true)
        } else if first & 0x20 != 0 {
            // Literal Field Line with Literal Name (§4.5.6).
            let limit = StringLimits {
                max_wire: limits.max_string,
                max_decoded: budget.saturating_sub(overhead),
            };
            let name = read_string(section, &mut pos, 3, limit)?;
            let mut field = Field::new(name, Vec::new());
            field.never_indexed = first & 0x10 != 0;
            (field, true)
        } else if first & 0x10 != 0 {
            // Indexed Field Line with Post-Base Index (§4.5.3).
            let index = read_int(section, &mut pos, 4)?;
            let (name, value) = dynamic(post_base(index))?;
            (Field::new(name, value), false)
        } else {
            // Literal Field Line with Post-Base Name Reference (§4.5.5).
            let index = read_int(section, &mut pos, 3)?;
            let (name, _) = dynamic(post_base(index))?;
            let mut field = Field::new(name, Vec::new());
            field.never_indexed = first & 0x08 != 0;
            (field, true)
        };
        let mut field = field;
        let name_cost = field.name.len().saturating_add(overhead);
        budget = budget
            .checked_sub(name_cost)
            .ok_or(Violation::FieldSectionTooLarge)?;
        if literal_value {
            let limit = StringLimits {
                max_wire: limits.max_string,
                max_decoded: budget,
            };
            field.value = read_string(section, &mut pos, 7, limit)?;
        }
        budget = budget
            .checked_sub(field.value.len())
            .ok_or(Violation::FieldSectionTooLarge)?;
        fields.push(field);
    }

    // RFC 9204 lets a decoder refuse a Required Insert Count larger than
    // the section needs (one more than its largest reference): it could
    // only block the stream for nothing.
    if prefix.required_insert_count > 0
        && largest_reference.and_then(|l| l.checked_add(1)) != Some(prefix.required_insert_count)
    {
        return Err(Violation::InvalidRequiredInsertCount(
            prefix.required_insert_count,
        ));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_insert_count_wraps_as_the_rfc_says() {
        // MaxEntries = 100 (a 3200-byte table), FullRange = 200.
        assert_eq!(decode_required_insert_count(0, 100, 0), Ok(0));
        assert_eq!(decode_required_insert_count(3, 100, 2), Ok(2));
        // 0 inserts so far, encoded 5: count 4 is ahead of us (blocked).
        assert_eq!(decode_required_insert_count(5, 100, 0), Ok(4));
        // After 250 inserts, an encoded 52 is 251.
        assert_eq!(decode_required_insert_count(52, 100, 250), Ok(251));
        // Past FullRange, or with no table at all.
        assert!(decode_required_insert_count(201, 100, 0).is_err());
        assert!(decode_required_insert_count(1, 0, 0).is_err());
        // Encoded 1 with nothing inserted could only mean 200, too far ahead.
        assert!(decode_required_insert_count(1, 100, 0).is_err());
        assert!(decode_required_insert_count(150, 100, 0).is_err());
    }

    #[test]
    fn a_negative_base_is_refused() {
        // RIC 1 (encoded 2), sign set, delta 1: Base = 1 - 1 - 1 < 0.
        let mut pos = 0;
        assert_eq!(
            read_prefix(&[0x02, 0x81], &mut pos, 3200, 1),
            Err(Violation::InvalidBase)
        );
        let mut pos = 0;
        assert_eq!(
            read_prefix(&[0x02, 0x80], &mut pos, 3200, 1),
            Ok(Prefix {
                required_insert_count: 1,
                base: 0
            })
        );
    }
}
