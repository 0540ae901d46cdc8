//! One table-driven test per rule of the WHATWG event-stream algorithm, plus
//! the spec's own examples. Every case runs fed whole, one byte at a time,
//! split in two at every position, and followed by trailing bytes that
//! complete nothing; all must give the same items and last event ID.

use tether_sse::{Error, Item, Limits, MessageEvent, Parser};

type Out = Result<Item, Error>;

fn ev(event_type: &str, data: &str, id: &str) -> Out {
    Ok(Item::Event(MessageEvent::new(event_type, data, id)))
}

fn msg(data: &str, id: &str) -> Out {
    ev("message", data, id)
}

fn retry(ms: u64) -> Out {
    Ok(Item::Retry(ms))
}

/// Feeds `chunks` as one stream and returns everything it produced.
fn run<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Out>, String) {
    let mut parser = Parser::with_limits(limits);
    let mut items = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        items.extend(std::iter::from_fn(|| parser.poll()));
    }
    parser.finish();
    items.extend(std::iter::from_fn(|| parser.poll()));
    (items, parser.last_event_id().to_owned())
}

fn check_with(limits: Limits, input: &[u8], items: &[Out], last_id: &str) {
    let expected = (items.to_vec(), last_id.to_owned());
    let show = String::from_utf8_lossy(input);
    assert_eq!(run(limits, [input]), expected, "whole: {show:?}");
    assert_eq!(run(limits, input.chunks(1)), expected, "byte at a time: {show:?}");
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(run(limits, [a, b]), expected, "split at {at}: {show:?}");
    }
    // Trailing bytes without a line end can complete nothing, whether they
    // come in the same chunk or the next. `x` is an unknown field that no
    // limit applies to; `data: tail` also grows a pending event.
    let mut trailers: Vec<&[u8]> = vec![b"x"];
    if limits == Limits::new() {
        trailers.push(b"data: tail");
    }
    for trailer in trailers {
        let joined = [input, trailer].concat();
        assert_eq!(run(limits, [&joined[..]]), expected, "trailing: {show:?}");
        assert_eq!(
            run(limits, [input, trailer]),
            expected,
            "trailing chunk: {show:?}"
        );
    }
    // Empty chunks anywhere change nothing.
    let with_empties: Vec<&[u8]> = input.chunks(3).flat_map(|c| [&b""[..], c]).collect();
    assert_eq!(run(limits, with_empties), expected, "empty chunks: {show:?}");
}

fn check(input: &[u8], items: &[Out], last_id: &str) {
    check_with(Limits::new(), input, items, last_id);
}

#[test]
fn spec_example_first_second_third_message() {
    check(
        b"data: This is the first message.\n\n\
          data: This is the second message, it\n\
          data: has two lines.\n\n\
          data: This is the third message.\n\n",
        &[
            msg("This is the first message.", ""),
            msg("This is the second message, it\nhas two lines.", ""),
            msg("This is the third message.", ""),
        ],
        "",
    );
}

#[test]
fn spec_example_add_and_remove_event_types() {
    check(
        b"event: add\ndata: 73857293\n\n\
          event: remove\ndata: 2153\n\n\
          event: add\ndata: 113411\n\n",
        &[
            ev("add", "73857293", ""),
            ev("remove", "2153", ""),
            ev("add", "113411", ""),
        ],
        "",
    );
}

#[test]
fn spec_example_stock_ticker() {
    check(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        &[msg("YHOO\n+2\n10", "")],
        "",
    );
}

#[test]
fn spec_example_test_stream_with_ids() {
    let stream: &[u8] = b": test stream\n\n\
          data: first event\nid: 1\n\n\
          data:second event\nid\n\n\
          data:  third event\n\n";
    check(
        stream,
        &[
            msg("first event", "1"),
            msg("second event", ""),
            msg(" third event", ""),
        ],
        "",
    );
    // Without the final blank line the end of the stream is not enough to
    // dispatch the last event.
    check(
        &stream[..stream.len() - 1],
        &[msg("first event", "1"), msg("second event", "")],
        "",
    );
}

#[test]
fn spec_example_empty_data_and_single_newline() {
    check(b"data\n\ndata\ndata\n\ndata:", &[msg("", ""), msg("\n", "")], "");
}

#[test]
fn spec_example_space_after_colon_is_optional() {
    check(
        b"data:test\n\ndata: test\n\n",
        &[msg("test", ""), msg("test", "")],
        "",
    );
}

#[test]
fn one_leading_bom_is_stripped() {
    check(b"\xEF\xBB\xBFdata: a\n\n", &[msg("a", "")], "");
    check(b"\xEF\xBB\xBF", &[], "");
    check(b"\xEF\xBB\xBF\n", &[], "");
}

#[test]
fn a_second_bom_is_kept_as_data() {
    // The second BOM starts the field name, which is then unknown.
    check(
        b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n",
        &[msg("b", "")],
        "",
    );
    check(
        b"\xEF\xBB\xBFdata: 1\n\n\xEF\xBB\xBFdata: 2\n\ndata: 3\n\n",
        &[msg("1", ""), msg("3", "")],
        "",
    );
    check(b"data: \xEF\xBB\xBFx\n\n", &[msg("\u{FEFF}x", "")], "");
}

#[test]
fn a_partial_bom_is_not_stripped() {
    check(b"\xEF\xBBdata: a\n\ndata: b\n\n", &[msg("b", "")], "");
    check(b"\xEF\n\ndata: x\n\n", &[msg("x", "")], "");
    check(b"\xEF\xBB\ndata: x\n\n", &[msg("x", "")], "");
    // A UTF-16 BOM is two bad bytes in front of the first field name.
    check(b"\xFF\xFEdata: 1\n\ndata: 2\n\n", &[msg("2", "")], "");
    check(b"\xFE\xFFdata: 1\n\ndata: 2\n\n", &[msg("2", "")], "");
}

#[test]
fn lines_end_with_lf_crlf_or_cr() {
    check(b"data: a\n\n", &[msg("a", "")], "");
    check(b"data: a\r\n\r\n", &[msg("a", "")], "");
    check(b"data: a\r\r", &[msg("a", "")], "");
    check(
        b"data: a\r\ndata: b\rdata: c\ndata: d\n\r\n",
        &[msg("a\nb\nc\nd", "")],
        "",
    );
}

#[test]
fn crlf_is_one_line_end_but_lfcr_is_two() {
    check(b"data: a\r\ndata: b\r\n\r\n", &[msg("a\nb", "")], "");
    check(b"data: a\n\rdata: b\n\n", &[msg("a", ""), msg("b", "")], "");
    // CR, then CRLF: the second line end ends an empty line.
    check(b"data: a\r\r\n", &[msg("a", "")], "");
    check(b"data: a\r\n\rdata: b\r\n\n", &[msg("a", ""), msg("b", "")], "");
}

#[test]
fn a_cr_at_end_of_stream_ends_the_line() {
    check(b"data: a\n\r", &[msg("a", "")], "");
    check(b"data: a\r\r", &[msg("a", "")], "");
    check(b"data: a\r", &[], "");
}

#[test]
fn comments_are_ignored() {
    check(b":hello\n\n", &[], "");
    check(b":\n:\n\n", &[], "");
    check(b"data: a\n: c\ndata: b\n:x: y\n\n", &[msg("a\nb", "")], "");
    check(b": data: x\n\ndata: y\n\n", &[msg("y", "")], "");
    check(b":id: 5\ndata\n\n", &[msg("", "")], "");
}

#[test]
fn a_field_without_colon_has_an_empty_value() {
    check(b"data\n\n", &[msg("", "")], "");
    check(b"event\ndata: x\n\n", &[msg("x", "")], "");
    check(
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        &[msg("a", "1"), msg("b", "")],
        "",
    );
    check(b"retry\n", &[], "");
}

#[test]
fn split_at_the_first_colon_only() {
    check(b"data: a:b: c\n\n", &[msg("a:b: c", "")], "");
    check(b"data::x\n\n", &[msg(":x", "")], "");
    check(b"data: :x\n\n", &[msg(":x", "")], "");
    check(b"event:a:b\ndata\n\n", &[ev("a:b", "", "")], "");
    check(b"id:a:b\ndata\n\n", &[msg("", "a:b")], "a:b");
}

#[test]
fn exactly_one_leading_space_is_removed() {
    check(b"data:  x\n\n", &[msg(" x", "")], "");
    check(b"data: \n\n", &[msg("", "")], "");
    check(b"data:   \n\n", &[msg("  ", "")], "");
    check(b"data:\tx\n\n", &[msg("\tx", "")], "");
    check(b"data: x \n\n", &[msg("x ", "")], "");
    check(b"id:  7\ndata\n\n", &[msg("", " 7")], " 7");
    check(b"event:  t\ndata\n\n", &[ev(" t", "", "")], "");
}

#[test]
fn unknown_and_differently_cased_fields_are_ignored() {
    check(b"Data: x\n\n", &[], "");
    check(b"DATA: x\nEvent: y\nID: 3\ndata: z\n\n", &[msg("z", "")], "");
    check(b"data : x\n\n", &[], "");
    check(b" data: x\n\n", &[], "");
    check(b"foo: bar\ndata: x\nfoo\n\n", &[msg("x", "")], "");
    check(b"dat: x\ndatax: y\nd: z\ndata\n\n", &[msg("", "")], "");
    check(b"Retry: 5\nRETRY: 6\nretryx: 7\n\n", &[], "");
    check(b"ids: 5\ndata\n\n", &[msg("", "")], "");
}

#[test]
fn data_lines_are_joined_with_lf_and_one_trailing_lf_removed() {
    check(b"data: a\ndata: b\n\n", &[msg("a\nb", "")], "");
    check(b"data: a\ndata\n\n", &[msg("a\n", "")], "");
    check(b"data\ndata\ndata\n\n", &[msg("\n\n", "")], "");
    check(b"data:\n\n", &[msg("", "")], "");
}

#[test]
fn an_empty_data_buffer_dispatches_nothing() {
    check(b"\n\n\n", &[], "");
    check(b"event: x\n\n", &[], "");
    check(b"event: x\nid: 1\n\n", &[], "1");
}

#[test]
fn the_id_is_committed_even_when_nothing_is_dispatched() {
    check(b"id: 5\n\n", &[], "5");
    check(b"id: 5\n\ndata: x\n\n", &[msg("x", "5")], "5");
}

#[test]
fn an_empty_event_type_means_message() {
    check(b"event:\ndata: x\n\n", &[msg("x", "")], "");
    check(b"event: \ndata: x\n\n", &[msg("x", "")], "");
    check(b"event: message\ndata: x\n\n", &[msg("x", "")], "");
}

#[test]
fn the_last_event_field_wins() {
    check(b"event: a\nevent: b\ndata\n\n", &[ev("b", "", "")], "");
    check(b"event: a\nevent\ndata\n\n", &[msg("", "")], "");
}

#[test]
fn the_event_type_resets_after_each_dispatch() {
    check(
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        &[ev("a", "1", ""), msg("2", "")],
        "",
    );
    // Also after a blank line that dispatched nothing.
    check(b"event: a\n\ndata: 2\n\n", &[msg("2", "")], "");
}

#[test]
fn an_id_with_nul_is_ignored() {
    check(
        b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n",
        &[msg("a", "1"), msg("b", "1")],
        "1",
    );
    check(b"id: 1\nid: x\0y\ndata\n\n", &[msg("", "1")], "1");
    check(b"id: \0\ndata\n\n", &[msg("", "")], "");
}

#[test]
fn an_empty_id_resets_the_last_event_id() {
    check(
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
        &[msg("a", "1"), msg("b", "")],
        "",
    );
    check(
        b"id: 1\ndata: a\n\nid: \ndata: b\n\n",
        &[msg("a", "1"), msg("b", "")],
        "",
    );
}

#[test]
fn the_last_event_id_persists_across_events() {
    check(
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n",
        &[msg("a", "1"), msg("b", "1"), msg("c", "2")],
        "2",
    );
}

#[test]
fn an_incomplete_event_is_discarded_and_its_id_never_committed() {
    check(b"id: 1\ndata: a\n\nid: 2\ndata: b\n", &[msg("a", "1")], "1");
    check(b"id: 1\n\nid: 2\n", &[], "1");
    check(b"data: a\n", &[], "");
    check(b"data: a", &[], "");
    check(
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n\r\ndata: c",
        &[msg("a", "1"), msg("b", "2")],
        "2",
    );
}

#[test]
fn retry_needs_only_ascii_digits() {
    check(b"retry: 1000\n", &[retry(1000)], "");
    check(b"retry: 0001\n", &[retry(1)], "");
    check(b"retry:0\n", &[retry(0)], "");
    for bad in [
        &b"retry: 1000x\n"[..],
        b"retry: +5\n",
        b"retry: -1\n",
        b"retry:\n",
        b"retry: \n",
        b"retry\n",
        b"retry:  5\n",
        b"retry: 5 \n",
        b"retry: 1_000\n",
        b"retry: 1.5\n",
        b"retry: 0x10\n",
        // FULLWIDTH DIGIT FIVE is a digit, but not an ASCII one.
        b"retry: \xEF\xBC\x95\n",
    ] {
        check(bad, &[], "");
    }
}

#[test]
fn retry_values_too_large_for_u64_saturate() {
    check(b"retry: 18446744073709551615\n", &[retry(u64::MAX)], "");
    check(
        b"retry: 18446744073709551616\nretry: 99999999999999999999999999\n",
        &[retry(u64::MAX), retry(u64::MAX)],
        "",
    );
}

#[test]
fn retry_is_reported_where_the_field_is() {
    check(
        b"data: a\nretry: 5\ndata: b\n\nretry: 6\n",
        &[retry(5), msg("a\nb", ""), retry(6)],
        "",
    );
    // Applied when read, even in an event that never completes...
    check(b"data: x\nretry: 7\n", &[retry(7)], "");
    // ...but only once its line is complete.
    check(b"retry: 7", &[], "");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    check(b"data: \xFFab\n\n", &[msg("\u{FFFD}ab", "")], "");
    // A truncated sequence is one U+FFFD (the maximal subpart)...
    check(b"data: \xE2\x82\n\n", &[msg("\u{FFFD}", "")], "");
    check(b"data: \xE2\x82x\n\n", &[msg("\u{FFFD}x", "")], "");
    check(b"data: \xF0\x9F\x98\n\n", &[msg("\u{FFFD}", "")], "");
    // ...and a line end in the middle of one ends it.
    check(
        b"data: \xE2\x82\ndata: \xAC\n\n",
        &[msg("\u{FFFD}\n\u{FFFD}", "")],
        "",
    );
    // Surrogates and overlong forms are one U+FFFD per byte.
    check(
        b"data: \xED\xA0\x80\n\n",
        &[msg("\u{FFFD}\u{FFFD}\u{FFFD}", "")],
        "",
    );
    check(b"data: \xC0\x80\n\n", &[msg("\u{FFFD}\u{FFFD}", "")], "");
    check(
        b"data: \xF5\x80\x80\x80\n\n",
        &[msg("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}", "")],
        "",
    );
    check(b"id: \xFF\ndata\n\n", &[msg("", "\u{FFFD}")], "\u{FFFD}");
    check(b"event: \xFEx\ndata\n\n", &[ev("\u{FFFD}x", "", "")], "");
    check(b"d\xFFata: x\n\n", &[], "");
}

#[test]
fn multibyte_characters_split_across_chunks_decode_whole() {
    // `check` splits these at every byte.
    check(
        b"data: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n\n",
        &[msg("caf\u{e9} \u{20ac} \u{1F600}", "")],
        "",
    );
    check(b"id: \xC3\xA9\ndata\n\n", &[msg("", "\u{e9}")], "\u{e9}");
}

#[test]
fn nul_is_kept_in_data_and_event_type() {
    check(b"data: a\0b\n\n", &[msg("a\0b", "")], "");
    check(b"event: a\0\ndata\n\n", &[ev("a\0", "", "")], "");
}

fn small() -> Limits {
    Limits::new().with_max_line_len(16).with_max_event_size(16)
}

const LINE: Error = Error::LineTooLong { limit: 16 };
const EVENT: Error = Error::EventTooLarge { limit: 16 };

#[test]
fn lines_up_to_the_limit_are_fine() {
    // 16 bytes each.
    check_with(
        small(),
        b"id: 0123456789ab\nevent: 012345678\nretry: 123456789\ndata\n\n",
        &[retry(123456789), ev("012345678", "", "0123456789ab")],
        "0123456789ab",
    );
}

#[test]
fn a_long_id_event_or_retry_line_is_an_error_and_drops_its_event() {
    for line in [
        &b"id: 0123456789abc\n"[..],
        b"event: 0123456789\n",
        b"retry: 0000000001\n",
    ] {
        let input = [
            &b"id: 1\ndata: a\n\n"[..],
            b"data: b\n",
            line,
            b"data: c\n\ndata: d\n\n",
        ]
        .concat();
        check_with(small(), &input, &[msg("a", "1"), Err(LINE), msg("d", "1")], "1");
    }
}

#[test]
fn a_line_that_never_ends_is_cut_off_at_the_limit() {
    let long_id = [&b"id: "[..], &[b'7'; 1000]].concat();
    check_with(small(), &long_id, &[Err(LINE)], "");
    let long_data = [&b"data: "[..], &[b'7'; 1000]].concat();
    check_with(small(), &long_data, &[Err(EVENT)], "");
    // A value of exactly the limit cannot end without its LF going over.
    check_with(small(), b"data: 0123456789abcdef", &[Err(EVENT)], "");
    // (One byte shorter still, so that the trailing `x` check fits too.)
    check_with(small(), b"data: 0123456789abcd", &[], "");
    // Without a line end a long field name is never known to be `data`.
    let long_name = [b'd'; 1000];
    check_with(small(), &long_name, &[], "");
}

#[test]
fn data_up_to_the_limit_is_fine() {
    // 11 + 5 bytes, the LFs included.
    check_with(
        small(),
        b"data: 0123456789\ndata: 1234\n\n",
        &[msg("0123456789\n1234", "")],
        "",
    );
}

#[test]
fn too_much_data_is_an_error_and_the_event_is_skipped() {
    check_with(
        small(),
        b"data: 0123456789\ndata: 01234\ndata: x\nretry: 5\n\ndata: ok\n\n",
        &[Err(EVENT), msg("ok", "")],
        "",
    );
    // Each data line adds a LF, so empty lines count too.
    check_with(small(), &[&b"data\n"[..]; 17].concat(), &[Err(EVENT)], "");
}

#[test]
fn after_an_error_the_last_event_id_is_the_committed_one() {
    check_with(
        small(),
        b"id: 1\ndata: a\n\nid: 2\ndata: 0123456789abcdef\n\ndata: b\n\n",
        &[msg("a", "1"), Err(EVENT), msg("b", "1")],
        "1",
    );
    // In a fresh stream the last event ID buffer started out empty.
    check_with(
        small(),
        b"id: 2\ndata: 0123456789abcdef\n\ndata: b\n\n",
        &[Err(EVENT), msg("b", "")],
        "",
    );
}

#[test]
fn comments_and_unknown_fields_are_not_limited() {
    let long_comment = [&b": "[..], &[b'c'; 100], b"\n"].concat();
    let long_unknown = [&b"foo: "[..], &[b'u'; 100], b"\n"].concat();
    let input = [&long_comment[..], &long_unknown, b"data: ok\n\n"].concat();
    check_with(small(), &input, &[msg("ok", "")], "");
}

#[test]
fn errors_during_a_skipped_event_are_not_repeated() {
    check_with(
        small(),
        b"data: 0123456789abcdef\ndata: 0123456789abcdef\nid: 0123456789abcdef\n\n",
        &[Err(EVENT)],
        "",
    );
}

#[test]
fn a_cr_at_the_end_of_a_chunk_and_lf_at_the_start_of_the_next_are_one_line_end() {
    let (items, _) = run(
        Limits::new(),
        [&b"data: a\r"[..], b"\ndata: b\r", b"\n", b"\r", b"\n"],
    );
    assert_eq!(items, [msg("a\nb", "")]);
}

#[test]
fn large_events_come_out_whole_whatever_the_chunking() {
    let payload: String = (0..(1 << 20))
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let stream = format!("id: big\ndata: {payload}\ndata: {payload}\n\n").into_bytes();
    let expected = vec![msg(&format!("{payload}\n{payload}"), "big")];
    for size in [1 << 10, 4093, 1 << 16, stream.len()] {
        assert_eq!(
            run(Limits::new(), stream.chunks(size)).0,
            expected,
            "chunks of {size}"
        );
    }
}

#[test]
fn finish_drops_the_partial_line_and_starts_a_new_stream() {
    let mut parser = Parser::new();
    parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: part");
    parser.finish();
    assert_eq!(parser.poll(), Some(msg("a", "1")));
    assert_eq!(parser.last_event_id(), "1");
    // A new stream: its BOM is stripped again, and a pending CR or BOM
    // prefix from the old one is forgotten.
    parser.feed(b"\xEF\xBB");
    parser.finish();
    parser.feed(b"\xEF\xBB\xBFdata: b\r");
    parser.finish();
    parser.feed(b"\ndata: c\n\n");
    assert_eq!(parser.poll(), Some(msg("c", "")));
    assert_eq!(parser.poll(), None);
}

#[test]
fn a_new_stream_starts_with_an_empty_last_event_id_buffer() {
    // The spec gives each parsed stream its own buffers, all starting
    // empty, so the first dispatch of a reconnection without an `id`
    // resets the last event ID.
    let mut parser = Parser::new();
    parser.feed(b"id: 1\nretry: 10\ndata: a\n\n");
    parser.finish();
    assert_eq!(parser.last_event_id(), "1");
    assert_eq!(parser.retry(), Some(10));
    parser.feed(b"data: b\n\n");
    let items: Vec<_> = std::iter::from_fn(|| parser.poll()).collect();
    assert_eq!(items, [retry(10), msg("a", "1"), msg("b", "")]);
    assert_eq!(parser.last_event_id(), "");
    assert_eq!(parser.retry(), Some(10));
}

#[test]
fn an_error_early_in_a_new_stream_reverts_to_its_empty_id_buffer() {
    let mut parser = Parser::with_limits(small());
    parser.feed(b"id: 1\ndata: a\n\n");
    parser.finish();
    parser.feed(b"id: 2\ndata: 0123456789abcdef\n\ndata: b\n\n");
    let items: Vec<_> = std::iter::from_fn(|| parser.poll()).collect();
    assert_eq!(items, [msg("a", "1"), Err(EVENT), msg("b", "")]);
}

#[test]
fn items_not_yet_polled_survive_finish() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\n\nretry: 1\n");
    parser.finish();
    assert_eq!(parser.poll(), Some(msg("a", "")));
    assert_eq!(parser.poll(), Some(retry(1)));
    assert_eq!(parser.poll(), None);
}
