//! The SASL exchange against a scripted broker that answers real bytes
//! (tansu authenticates only users it keeps, and its memory storage
//! cannot be given one before it asks for them): `SaslHandshake`, then
//! `SaslAuthenticate` with PLAIN or SCRAM (the server side computed here
//! from RFC 5802), then `FindCoordinator`, which it answers only on an
//! authenticated connection, naming itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::*;
use crate::group::Coordinator;
use crate::transport::Connector;
use crate::wire::Reader;

const USER: &str = "alice";
const PASSWORD: &str = "pencil-7";
const SALT: &[u8] = b"salt of the fake";
const ITERATIONS: u32 = 4096;

/// What the fake broker saw: each connection's authenticated
/// `FindCoordinator`s.
#[derive(Default)]
struct Seen {
    authenticated: usize,
    found: usize,
    refused: Vec<String>,
}

/// A scripted broker on a loopback port offering `offered`, each
/// connection served on a thread of its own until the test ends.
fn broker(offered: &'static [&'static str]) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let shared = shared.clone();
            std::thread::spawn(move || serve(stream, offered, addr.port(), &shared));
        }
    });
    (addr.to_string(), seen)
}

/// The SCRAM state of a connection: the mechanism and the messages so far.
enum Step {
    Start,
    Plain,
    Scram {
        sha512: bool,
    },
    ScramFirst {
        sha512: bool,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

fn serve(mut stream: TcpStream, offered: &[&str], port: u16, seen: &Mutex<Seen>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut step = Step::Start;
    loop {
        let mut size = [0; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut request = vec![0; usize::try_from(u32::from_be_bytes(size)).unwrap()];
        stream.read_exact(&mut request).unwrap();
        let mut r = Reader::new(&request);
        let key = r.i16().unwrap();
        let _version = r.i16().unwrap();
        let correlation = r.i32().unwrap();
        let _client = r.string().unwrap();
        let mut out = Request::plain();
        out.i32(correlation);
        match key {
            SASL_HANDSHAKE => {
                let mechanism = r.string().unwrap().unwrap();
                let known = offered.contains(&mechanism.as_str());
                out.i16(if known { 0 } else { 33 });
                out.len(offered.len());
                for m in offered {
                    out.string(m);
                }
                step = match mechanism.as_str() {
                    "PLAIN" if known => Step::Plain,
                    "SCRAM-SHA-256" if known => Step::Scram { sha512: false },
                    "SCRAM-SHA-512" if known => Step::Scram { sha512: true },
                    _ => Step::Start,
                };
            }
            SASL_AUTHENTICATE => {
                let bytes = r.bytes().unwrap().to_vec();
                let (next, answer) = authenticate(step, &bytes);
                if matches!(next, Step::Done) {
                    seen.lock().unwrap().authenticated += 1;
                }
                step = next;
                match answer {
                    Ok(bytes) => {
                        out.i16(0);
                        out.i16(-1);
                        out.bytes(&bytes);
                    }
                    Err(why) => {
                        seen.lock().unwrap().refused.push(why.clone());
                        out.i16(58); // SASL_AUTHENTICATION_FAILED
                        out.string(&why);
                        out.bytes(&[]);
                    }
                }
                out.i64(0);
            }
            10 if matches!(step, Step::Done) => {
                seen.lock().unwrap().found += 1;
                out.i32(0);
                out.i16(0);
                out.i16(-1);
                out.i32(1);
                out.string("127.0.0.1");
                out.i32(i32::from(port));
            }
            // Anything else, or before authentication: as Kafka does, the
            // connection is closed.
            _ => return,
        }
        let out = out.into_plain();
        let mut framed = u32::try_from(out.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        stream.write_all(&framed).unwrap();
    }
}

/// RFC 5802's server side with the digest `$d`: whether `proof` is the
/// client's proof for `auth_message` with the password (then the
/// server's signature).
macro_rules! scram_with {
    ($d:ty, $auth_message:expr, $proof:expr) => {{
        let (auth_message, proof): (&str, &[u8]) = ($auth_message, $proof);
        let mut salted = vec![0; <$d as Digest>::output_size()];
        pbkdf2::pbkdf2::<Hmac<$d>>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut salted).unwrap();
        let mac = |key: &[u8], data: &[u8]| {
            let mut m = <Hmac<$d> as Mac>::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        };
        let stored_key = <$d>::digest(mac(&salted, b"Client Key")).to_vec();
        let signature = mac(&stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if proof.len() == signature.len() && <$d>::digest(&client_key).to_vec() == stored_key {
            Some(mac(&mac(&salted, b"Server Key"), auth_message.as_bytes()))
        } else {
            None
        }
    }};
}

fn authenticate(step: Step, bytes: &[u8]) -> (Step, Result<Vec<u8>, String>) {
    match step {
        Step::Plain => {
            let expected = format!("\0{USER}\0{PASSWORD}");
            if bytes == expected.as_bytes() {
                (Step::Done, Ok(Vec::new()))
            } else {
                (Step::Start, Err("bad credentials".to_owned()))
            }
        }
        Step::Scram { sha512 } => {
            let first = String::from_utf8(bytes.to_vec()).unwrap();
            let bare = first.strip_prefix("n,,").expect("no channel binding").to_owned();
            // The client's nonce is everything after its `r=`: it may
            // hold "r=" itself (any printable but a comma), so it is not
            // found by searching for one.
            let client_nonce = bare
                .strip_prefix(&format!("n={USER},r="))
                .unwrap_or_else(|| panic!("{bare}"));
            let nonce = format!("{client_nonce}fake-server-nonce");
            let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(SALT));
            let answer = server_first.clone().into_bytes();
            (
                Step::ScramFirst {
                    sha512,
                    client_first_bare: bare,
                    server_first,
                    nonce,
                },
                Ok(answer),
            )
        }
        Step::ScramFirst {
            sha512,
            client_first_bare,
            server_first,
            nonce,
        } => {
            let last = String::from_utf8(bytes.to_vec()).unwrap();
            let (without_proof, proof) = last.rsplit_once(",p=").unwrap();
            assert_eq!(without_proof, format!("c=biws,r={nonce}"));
            let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
            let proof = B64.decode(proof).unwrap();
            let verified = if sha512 {
                scram_with!(Sha512, &auth_message, &proof)
            } else {
                scram_with!(Sha256, &auth_message, &proof)
            };
            match verified {
                Some(signature) => (
                    Step::Done,
                    Ok(format!("v={}", B64.encode(signature)).into_bytes()),
                ),
                None => (Step::Start, Err("bad credentials".to_owned())),
            }
        }
        Step::Start | Step::Done => (Step::Start, Err("unexpected".to_owned())),
    }
}

fn find(addr: &str, sasl: Sasl) -> Result<Coordinator, Error> {
    let connector = Connector {
        tls: None,
        sasl: Some(sasl),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(Coordinator::find(
        &connector,
        &[addr.to_owned()],
        "group",
        Duration::from_secs(10),
    ))
}

#[test]
fn each_mechanism_authenticates_both_connections() {
    for mechanism in [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let (addr, seen) = broker(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
        find(&addr, Sasl::new(mechanism, USER.to_owned(), PASSWORD.to_owned()))
            .unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
        let seen = seen.lock().unwrap();
        // The broker asked, then the coordinator it named (itself), each
        // connection authenticated before its FindCoordinator was answered.
        assert_eq!((seen.authenticated, seen.found), (2, 1), "{mechanism:?}");
        assert!(seen.refused.is_empty(), "{mechanism:?}: {:?}", seen.refused);
    }
}

#[test]
fn a_wrong_password_is_refused_and_never_said() {
    for mechanism in [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let (addr, seen) = broker(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
        let wrong = "wrong-horse-battery";
        let error = find(&addr, Sasl::new(mechanism, USER.to_owned(), wrong.to_owned()))
            .err()
            .unwrap();
        let said = error.to_string();
        assert!(matches!(error, Error::Authentication(_)), "{mechanism:?}: {said}");
        assert!(said.contains("bad credentials"), "{said}");
        assert!(!said.contains(wrong), "{said}");
        assert_eq!(seen.lock().unwrap().found, 0);
    }
}

#[test]
fn a_mechanism_not_offered_is_refused() {
    let (addr, _) = broker(&["SCRAM-SHA-512"]);
    let error = find(
        &addr,
        Sasl::new(Mechanism::Plain, USER.to_owned(), PASSWORD.to_owned()),
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains("SCRAM-SHA-512"), "{error}");
}

#[test]
fn mechanisms_parse_and_the_password_is_not_shown() {
    assert_eq!(Mechanism::parse("scram-sha-256").unwrap(), Mechanism::ScramSha256);
    assert_eq!(Mechanism::parse("PLAIN").unwrap(), Mechanism::Plain);
    assert!(Mechanism::parse("GSSAPI").is_err());
    let sasl = Sasl::new(Mechanism::Plain, USER.to_owned(), PASSWORD.to_owned());
    assert!(!format!("{sasl:?}").contains(PASSWORD));
    let mut config = crate::KafkaConfig::new(vec!["k:9092".into()], vec!["t".into()]);
    config.sasl = Some(sasl);
    assert!(!format!("{config:?}").contains(PASSWORD));
}
