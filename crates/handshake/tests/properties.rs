//! Property tests: extension headers parse back to what built them, the
//! two roles agree with each other, and no input makes the server side
//! panic or disagree with itself when split.

use proptest::prelude::*;
use tether_handshake::{
    ClientRequest, Error, Extension, ExtensionNegotiator, ExtensionParams, ServerConfig, Status,
    parse_extensions, parse_request,
};

const TCHARS: &[char] = &[
    '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', '0', '9', 'a', 'z', 'A', 'Z',
    'q', 'Q', '5',
];

fn token() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TCHARS), 1..8).prop_map(|c| c.into_iter().collect())
}

fn ows() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["", "", " ", "\t", "  ", " \t "][..])
}

/// A parameter value and how to write it: bare, or quoted with the
/// characters whose flag is set escaped.
#[derive(Clone, Debug)]
enum Value {
    Bare(String),
    Quoted(String, Vec<bool>),
}

impl Value {
    fn text(&self) -> &str {
        match self {
            Value::Bare(s) | Value::Quoted(s, _) => s,
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        token().prop_map(Value::Bare),
        (token(), prop::collection::vec(any::<bool>(), 8)).prop_map(|(t, e)| Value::Quoted(t, e)),
    ]
}

#[derive(Clone, Debug)]
struct Param {
    name: String,
    value: Option<Value>,
    spaces: [&'static str; 4],
}

#[derive(Clone, Debug)]
struct Ext {
    name: String,
    params: Vec<Param>,
    after: &'static str,
    empty_elements: usize,
}

fn param() -> impl Strategy<Value = Param> {
    (token(), prop::option::of(value()), [ows(), ows(), ows(), ows()])
        .prop_map(|(name, value, spaces)| Param { name, value, spaces })
}

fn ext() -> impl Strategy<Value = Ext> {
    (token(), prop::collection::vec(param(), 0..4), ows(), 0..2usize).prop_map(
        |(name, params, after, empty_elements)| Ext {
            name,
            params,
            after,
            empty_elements,
        },
    )
}

fn render(exts: &[Ext]) -> String {
    let mut s = String::new();
    for (i, e) in exts.iter().enumerate() {
        if i > 0 {
            s.push(',');
            for _ in 0..e.empty_elements {
                s.push_str(" ,");
            }
            s.push_str(e.after);
        }
        s.push_str(&e.name);
        for p in &e.params {
            s.push_str(p.spaces[0]);
            s.push(';');
            s.push_str(p.spaces[1]);
            s.push_str(&p.name);
            if let Some(v) = &p.value {
                s.push_str(p.spaces[2]);
                s.push('=');
                s.push_str(p.spaces[3]);
                match v {
                    Value::Bare(t) => s.push_str(t),
                    Value::Quoted(t, escapes) => {
                        s.push('"');
                        for (c, escape) in t.chars().zip(escapes.iter().cycle()) {
                            if *escape {
                                s.push('\\');
                            }
                            s.push(c);
                        }
                        s.push('"');
                    }
                }
            }
        }
        s.push_str(e.after);
    }
    s
}

type Flat = Vec<(String, Vec<(String, Option<String>)>)>;

fn flatten(parsed: &[Extension<'_>]) -> Flat {
    parsed
        .iter()
        .map(|e| {
            let params = e
                .params()
                .iter()
                .map(|p| (p.name().to_string(), p.value().map(str::to_string)))
                .collect();
            (e.name().to_string(), params)
        })
        .collect()
}

/// Accepts the first offer of its name that has an `ok` parameter.
struct Accepting(&'static str);

impl ExtensionNegotiator for Accepting {
    type Value = &'static str;
    fn name(&self) -> &str {
        self.0
    }
    fn negotiate(&self, offers: &[Extension<'_>]) -> tether_handshake::NegotiationResult<&'static str> {
        if offers.iter().any(|o| o.param("ok").is_some()) {
            let mut p = ExtensionParams::new();
            p.push("ok", None)?;
            Ok(Some((p, self.0)))
        } else {
            Ok(None)
        }
    }
}

const PROTOCOLS: &[&str] = &["v1", "v2", "v3", "v4"];
const EXTENSIONS: &[&str] = &["x-a", "x-b", "x-c"];

fn shuffled_subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(pool, 0..=pool.len()).prop_shuffle()
}

proptest! {
    #[test]
    fn extension_headers_parse_back_to_their_offers(exts in prop::collection::vec(ext(), 1..5)) {
        let header = render(&exts);
        let parsed = parse_extensions(&header).map_err(|e| TestCaseError::fail(format!("{header:?}: {e}")))?;
        let want: Flat = exts
            .iter()
            .map(|e| {
                let params = e
                    .params
                    .iter()
                    .map(|p| (p.name.clone(), p.value.as_ref().map(|v| v.text().to_string())))
                    .collect();
                (e.name.clone(), params)
            })
            .collect();
        prop_assert_eq!(flatten(&parsed), want, "{:?}", header);
        // The canonical form parses back to the same offers.
        let canonical: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        let canonical = canonical.join(", ");
        prop_assert_eq!(parse_extensions(&canonical).unwrap(), parsed);
    }

    #[test]
    fn params_builder_output_parses_back(params in prop::collection::vec((token(), prop::option::of(token())), 0..5), name in token()) {
        let mut built = ExtensionParams::new();
        for (n, v) in &params {
            built.push(n, v.as_deref()).unwrap();
        }
        let element = built.element(&name).unwrap();
        let parsed = parse_extensions(&element).unwrap();
        prop_assert_eq!(flatten(&parsed), vec![(name, params)]);
    }

    #[test]
    fn client_and_server_agree(
        nonce in any::<[u8; 16]>(),
        offered in shuffled_subset(PROTOCOLS),
        preferred in shuffled_subset(PROTOCOLS),
        offers in prop::collection::vec((prop::sample::select(EXTENSIONS), any::<bool>()), 0..5),
        negotiators in shuffled_subset(EXTENSIONS),
        frames in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let offer_text: Vec<String> = offers
            .iter()
            .map(|(name, ok)| if *ok { format!("{name}; ok") } else { name.to_string() })
            .collect();
        let offer_text = offer_text.join(", ");
        let mut request = ClientRequest::new("example.com:9000", "/ws?x=1", nonce).protocols(&offered);
        if !offers.is_empty() {
            request = request.extensions(&offer_text);
        }
        let mut wire = Vec::new();
        let client = request.write(&mut wire).unwrap();

        let mut config = ServerConfig::new().protocols(preferred.iter().copied());
        for n in &negotiators {
            config = config.negotiator(Accepting(n));
        }
        let Ok(Status::Complete((req, used))) = parse_request(&wire) else {
            return Err(TestCaseError::fail("client request did not parse"));
        };
        prop_assert_eq!(used, wire.len());
        let accepted = config.accept(req.head()).map_err(|r| TestCaseError::fail(r.reason().to_string()))?;

        let want_protocol = preferred.iter().copied().find(|p| offered.contains(p));
        prop_assert_eq!(accepted.protocol(), want_protocol);
        let want_exts: Vec<&str> = negotiators
            .iter()
            .copied()
            .filter(|n| offers.iter().any(|(o, ok)| o == n && *ok))
            .collect();

        let mut response = Vec::new();
        accepted.write_response(&mut response, &[("X-Extra", "1")]).unwrap();
        prop_assert_eq!(accepted.into_extension_values(), want_exts.clone());
        let head_len = response.len();
        response.extend_from_slice(&frames);
        let Ok(Status::Complete((res, used))) = client.validate_response(&response) else {
            return Err(TestCaseError::fail("server response refused"));
        };
        prop_assert_eq!(used, head_len);
        prop_assert_eq!(res.protocol(), want_protocol);
        let names: Vec<&str> = res.extensions().iter().map(|e| e.name()).collect();
        prop_assert_eq!(names, want_exts);
        prop_assert_eq!(res.header("x-extra"), Some(&b"1"[..]));
    }

    #[test]
    fn arbitrary_requests_never_panic_and_split_consistently(
        data in prop::collection::vec(any::<u8>(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        let whole = parse_request(&data);
        let at = split.index(data.len() + 1);
        if let Ok(Status::Complete((req, used))) = &whole {
            // A prefix that holds the whole head parses to the same head.
            if at >= *used {
                prop_assert_eq!(parse_request(&data[..at]), whole.clone());
            } else {
                prop_assert_eq!(parse_request(&data[..at]), Ok(Status::Partial));
            }
            let config: ServerConfig = ServerConfig::new().protocol("v1");
            let mut out = Vec::new();
            match config.accept(req.head()) {
                Ok(a) => a.write_response(&mut out, &[]).unwrap(),
                Err(r) => r.write_response(&mut out),
            }
            prop_assert!(out.starts_with(b"HTTP/1.1 "));
        }
    }
}

#[test]
fn the_round_trip_can_fail() {
    // The agreement property above only means something if a mismatch is
    // caught: a response for another key is refused.
    let mut wire = Vec::new();
    let client = ClientRequest::new("h", "/", [7; 16]).write(&mut wire).unwrap();
    let other = ClientRequest::new("h", "/", [8; 16])
        .write(&mut Vec::new())
        .unwrap();
    let config: ServerConfig = ServerConfig::new();
    let Ok(Status::Complete((req, _))) = parse_request(&wire) else {
        panic!()
    };
    let mut response = Vec::new();
    config
        .accept(req.head())
        .unwrap()
        .write_response(&mut response, &[])
        .unwrap();
    assert!(client.validate_response(&response).unwrap().is_complete());
    assert_eq!(other.validate_response(&response), Err(Error::AcceptMismatch));
}
