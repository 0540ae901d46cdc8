//! Who may do what: the credentials a request presents (the publish
//! token, a JSON Web Token from the header, the cookie or the query),
//! tickets and their holders, and the tokens a WebSocket sends to
//! authenticate or refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tether_hub::{Grant, Tickets, is_valid_topic, secret_matches};
use tether_server::{Request, Response};

use super::auth::{Clock, TokenSource};
use super::connections::SubjectConnections;
use super::metrics::{HubStats, add, count_refusal};
use super::namespace::Publisher;
use super::rate::SubjectBuckets;
use super::replies::error_response;
use super::routes::{Refusal, TokenFault, bearer};
use super::settings::HubSettings;
use super::subscribers::Holder;

mod awaiting;
mod revoked;
mod ticket_holder;

pub(super) use self::awaiting::{Awaiting, auth_ok, warning_time};
use self::revoked::Revocations;
pub(super) use self::revoked::entries_json;
pub use self::revoked::{DEFAULT_REVOCATION_TTL, MAX_REVOCATIONS, Revocation, Revoked};
use self::ticket_holder::TicketHolder;

/// What decides access, shared by every loop: a ticket issued on one loop
/// is redeemed on whichever loop the client lands (the locks are taken
/// only to issue and redeem).
#[derive(Debug, Clone)]
pub(super) struct Access {
    settings: Arc<HubSettings>,
    tickets: Arc<Mutex<Tickets>>,
    /// Tickets issued for a holder (a token's, or one the publish token
    /// named): when issued, and who (taken when the ticket is redeemed).
    holders: Arc<Mutex<HashMap<String, (Instant, TicketHolder)>>>,
    /// Token times are read on it.
    clock: Clock,
    /// The publish rate of each subject publishing lately.
    rates: Arc<Mutex<SubjectBuckets>>,
    /// The subjects' buckets for calls to the rpc hook.
    rpc_rates: Arc<Mutex<SubjectBuckets>>,
    /// Each subject's open connections.
    pub(super) connections: SubjectConnections,
    /// Tokens revoked.
    pub(super) revocations: Revocations,
    /// How many tokens' signatures were checked, on every loop: the tests
    /// hold a request to one.
    #[cfg(test)]
    pub(super) signatures_checked: Arc<std::sync::atomic::AtomicUsize>,
}

/// What the application's backend decided about a request it was asked
/// about, as the request goes on.
#[derive(Debug, Clone, Default)]
pub(super) struct Presented {
    /// Who it is, if the connect hook said so: as a token's holder.
    pub(super) identity: Option<tether_auth::Identity>,
    /// The subscribe hook let it subscribe to its topic.
    pub(super) subscribe_decided: bool,
    /// What its ticket grants, if it came with one: used (once) before
    /// the subscribe hook was asked, and not to be redeemed again.
    pub(super) ticket: Option<Grant>,
}

/// Why a token presented over a WebSocket is not taken.
pub(super) enum TokenRefused {
    /// It does not verify.
    Invalid(tether_auth::Error),
    /// It verifies, and does not grant the private topic.
    NotGranted,
    /// It verifies, and was revoked.
    Revoked,
}

/// What a token presented over a WebSocket grants its connection.
#[derive(Debug)]
pub(super) struct TokenGrant {
    pub(super) may_publish: bool,
    pub(super) holder: Holder,
}

/// Who a request's credentials say it is.
#[derive(Debug, Clone)]
pub(super) enum Credential {
    /// It presented none.
    None,
    /// The publish token.
    Admin,
    /// A verified JSON Web Token (boxed: a request's admission, which
    /// holds it, is kept inline for every request under way).
    Token(Box<tether_auth::Identity>),
}

impl Credential {
    /// Whether it may publish to `topic`: the publish token to any topic,
    /// a token to those its rights name; either as far as the topic's
    /// namespace takes publishes from it.
    pub(super) fn may_publish(&self, settings: &HubSettings, topic: &str) -> bool {
        match self {
            Credential::Admin => settings.may_publish(topic, Publisher::Backend),
            Credential::Token(who) => {
                who.rights.may_publish(topic) && settings.may_publish(topic, Publisher::Granted)
            }
            Credential::None => false,
        }
    }
}

impl Access {
    pub(super) fn new(settings: Arc<HubSettings>) -> Access {
        Access {
            tickets: Arc::new(Mutex::new(Tickets::new(
                settings.ticket_ttl,
                settings.max_tickets,
            ))),
            settings,
            holders: Arc::default(),
            clock: Clock::new(),
            rates: Arc::default(),
            rpc_rates: Arc::default(),
            connections: SubjectConnections::default(),
            revocations: Revocations::default(),
            #[cfg(test)]
            signatures_checked: Arc::default(),
        }
    }

    /// Whether a request presents no credential of any kind (no
    /// `Authorization`, no `ticket`, no token in a cookie or the query)
    /// and came with no decision of the backend's (`presented`): who it
    /// is would be the connect hook's to say.
    pub(super) fn presents_nothing(
        &self,
        request: &Request<'_>,
        ticket: Option<&str>,
        presented: Option<&Presented>,
    ) -> bool {
        presented.is_none()
            && bearer(request).is_none()
            && ticket.is_none()
            && self
                .settings
                .auth
                .as_ref()
                .is_none_or(|auth| auth.token_of(request).is_none())
    }

    /// The settings it decides by.
    pub(super) fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Decides by `settings` from now on (the tickets stay).
    pub(super) fn set_settings(&mut self, settings: Arc<HubSettings>) {
        self.settings = settings;
    }

    /// Takes one publish of `subject` at `now` under the publish rate
    /// (every loop shares the buckets); else how long until it may. No
    /// rate, or no subject: never limited here.
    pub(super) fn rate_limit(&self, subject: Option<&str>, now: Instant) -> Result<(), std::time::Duration> {
        let (Some(rate), Some(subject)) = (self.settings.publish_rate, subject) else {
            return Ok(());
        };
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(subject, rate, now)
    }

    /// Takes one of `subject`'s calls to the rpc hook at `now`, under
    /// [`HubSettings::rpc_rate`]; else how long until it may call. A
    /// caller without a subject is limited by its connection alone.
    pub(super) fn rpc_rate_limit(
        &self,
        subject: Option<&str>,
        now: Instant,
    ) -> Result<(), std::time::Duration> {
        let (Some(rate), Some(subject)) = (self.settings.rpc_rate, subject) else {
            return Ok(());
        };
        self.rpc_rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(subject, rate, now)
    }

    /// [`Access::rate_limit`] for an HTTP publish: its token's subject
    /// (the publish token, the backend's, is not limited).
    pub(super) fn rate_limit_request(
        &self,
        credential: &Result<Credential, Refusal>,
        now: Instant,
    ) -> Result<(), std::time::Duration> {
        if self.settings.publish_rate.is_none() {
            return Ok(());
        }
        match credential {
            Ok(Credential::Token(who)) => self.rate_limit(who.subject.as_deref(), now),
            _ => Ok(()),
        }
    }

    /// Tickets issued from now on are good for `ttl`, on every loop.
    pub(super) fn set_ticket_ttl(&self, ttl: std::time::Duration) {
        self.tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_ttl(ttl);
    }

    /// Whether the request's `Origin` may come in (none, the server's
    /// own, or a trusted one).
    pub(super) fn origin_ok(&self, request: &Request<'_>) -> bool {
        super::origin::origin_ok(&self.settings.trusted_origins, request)
    }

    /// Unix seconds now, on the hub's clock.
    pub(super) fn unix_secs(&self, now: Instant) -> u64 {
        self.clock.unix_secs(now)
    }

    /// Unix seconds at this moment, for checking a token that has just
    /// come: not the time the loop woke up, which may be before the token
    /// was minted (a long turn, a token minted and sent meanwhile), so
    /// that with no leeway its `iat` would lie in the future.
    pub(super) fn unix_secs_at_arrival(&self) -> u64 {
        self.clock.unix_secs(Instant::now())
    }

    /// What a request's credentials are: the publish token in
    /// `Authorization: Bearer`, a JSON Web Token (from the header, the
    /// cookie or the query, see [`HubAuth`](crate::HubAuth)) that verifies, or nothing. A
    /// token that is presented and does not verify is refused (401), on
    /// open topics too: a client that sends a bad token learns it. The
    /// backend's decision (`presented`), when it said who the request is,
    /// stands for its credential.
    pub(super) fn credential(
        &self,
        request: &Request<'_>,
        presented: Option<&Presented>,
        now: u64,
    ) -> Result<Credential, Refusal> {
        let credential = match presented {
            Some(Presented {
                identity: Some(identity),
                ..
            }) => Credential::Token(Box::new(identity.clone())),
            _ => self.verified(request, now)?,
        };
        match credential {
            Credential::Token(who) if self.is_revoked(&who, now) => {
                log::debug!("hub: token refused: token revoked");
                Err(Refusal::Revoked)
            }
            credential => Ok(credential),
        }
    }

    /// [`Access::credential`] without the revocation list (nor the
    /// backend's decision).
    fn verified(&self, request: &Request<'_>, now: u64) -> Result<Credential, Refusal> {
        let settings = &self.settings;
        let given = bearer(request);
        if let (Some(given), Some(admin)) = (given, &settings.publish_token)
            && secret_matches(admin, given)
        {
            return Ok(Credential::Admin);
        }
        let Some(auth) = &settings.auth else {
            return match given {
                Some(_) => {
                    log::debug!("hub: token refused: not the publish token, and no key verifies tokens");
                    Err(Refusal::BadCredentials(TokenFault::Unknown))
                }
                None => Ok(Credential::None),
            };
        };
        let Some((token, source)) = auth.token_of(request) else {
            return Ok(Credential::None);
        };
        if source == TokenSource::Cookie && !super::origin::cookie_ok(&settings.trusted_origins, request) {
            return Err(Refusal::CrossOriginCookie);
        }
        #[cfg(test)]
        self.signatures_checked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match auth.verify(&token, now) {
            Ok(identity) => Ok(Credential::Token(Box::new(identity))),
            Err(e) => {
                log::debug!("hub: token refused ({source:?}): {e}");
                match e {
                    tether_auth::Error::Expired => Err(Refusal::ExpiredCredentials),
                    e => Err(Refusal::BadCredentials(TokenFault::of(&e))),
                }
            }
        }
    }

    /// Whether a verified token was revoked, at `now` (Unix seconds).
    pub(super) fn is_revoked(&self, who: &tether_auth::Identity, now: u64) -> bool {
        self.revocations.is_revoked(
            who.token_id.as_deref(),
            who.subject.as_deref(),
            who.issued_at,
            now,
        )
    }

    /// The subject whose connection a WebSocket or event-stream request
    /// would open, as far as it can be told before: its `ticket`'s
    /// holder's, or the token's.
    pub(super) fn subject_of<'a>(
        &self,
        ticket: Option<&str>,
        credential: impl FnOnce() -> &'a Result<Credential, Refusal>,
    ) -> Option<String> {
        if let Some(ticket) = ticket {
            return self.ticket_subject(ticket);
        }
        match credential() {
            Ok(Credential::Token(who)) => who.subject.clone(),
            _ => None,
        }
    }

    /// The subject of the holder of `ticket`, if it names one.
    pub(super) fn ticket_subject(&self, ticket: &str) -> Option<String> {
        let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        holders.get(ticket).and_then(|(_, holder)| holder.subject.clone())
    }

    /// Whether the request's token (when tokens are verified) is the one
    /// in the cookie.
    pub(super) fn cookie_token(&self, request: &Request<'_>) -> bool {
        self.settings
            .auth
            .as_ref()
            .and_then(|auth| auth.token_of(request))
            .is_some_and(|(_, source)| source == TokenSource::Cookie)
    }

    /// Whether a WebSocket upgrade may send its token as its first message:
    /// tokens are verified, and the request presents no credential at all
    /// (no ticket, no `Authorization`, no token cookie or query), and the
    /// backend said nothing of it (`presented`).
    pub(super) fn may_authenticate_later(
        &self,
        request: &Request<'_>,
        ticket: Option<&str>,
        presented: Option<&Presented>,
    ) -> bool {
        presented.is_none()
            && ticket.is_none()
            && (self.settings.auth.as_ref()).is_some_and(|auth| auth.token_of(request).is_none())
    }

    /// Whether subscribing to `topic` needs a token that grants it: its
    /// namespace says so, or (where its namespace has no subscribe rule)
    /// a private pattern names it.
    pub(super) fn is_private(&self, topic: &str) -> bool {
        use super::namespace::WhoSubscribes;
        match self.settings.namespace_of(topic).and_then(|n| n.subscribe) {
            Some(rule) => rule == WhoSubscribes::Token,
            None => self
                .settings
                .auth
                .as_ref()
                .is_some_and(|auth| auth.private.needs_grant(topic)),
        }
    }

    /// Who may subscribe: a `ticket`, the publish token, a JSON Web Token
    /// (which a private topic needs, granting it), or anyone when tickets
    /// are not required and the topic is not private. The grant says
    /// whether a WebSocket may also publish.
    ///
    /// A ticket is used up here, unless `redeem` is false (the request
    /// is to wait for the subscribe hook): then it is only checked, and
    /// [`Access::redeem_ticket`] uses it when the hook is asked. Routed
    /// again with the hook's decision (`decided`, what its ticket granted
    /// then), the request's ticket is that; its holder is checked at
    /// every step.
    pub(super) fn authorize_subscriber<'a>(
        &self,
        ticket: Option<&str>,
        topic: &str,
        credential: impl FnOnce() -> &'a Result<Credential, Refusal>,
        redeem: bool,
        decided: Option<Grant>,
    ) -> Result<Grant, Refusal> {
        let settings = &self.settings;
        let private = self.is_private(topic);
        if let Some(ticket) = ticket {
            let grant = match decided {
                Some(grant) => grant,
                None => {
                    let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let grant = if redeem {
                        tickets.redeem(now, ticket, topic)
                    } else {
                        tickets.check(now, ticket, topic)
                    };
                    grant.map_err(|_| Refusal::Ticket)?
                }
            };
            let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
            // A ticket issued for a holder gives exactly the holder's
            // rights, until the holder's token expires.
            let Some((_, holder)) = holders.get(ticket) else {
                // Issued by the publish token: what it grants, as far as
                // the namespace takes publishes from the backend.
                return Ok(Grant {
                    publish: grant.publish && settings.may_publish(topic, Publisher::Backend),
                    ..grant
                });
            };
            let now = self.unix_secs(Instant::now());
            let revoked = self.revocations.is_revoked(
                holder.token_id.as_deref(),
                holder.subject.as_deref(),
                holder.issued_at,
                now,
            );
            let refusal = if holder.deadline.is_some_and(|d| d <= now) {
                Refusal::ExpiredCredentials
            } else if revoked {
                Refusal::Revoked
            } else if private && !holder.rights.may_subscribe(topic) {
                Refusal::NotGranted
            } else {
                return Ok(Grant {
                    topic: grant.topic,
                    publish: holder.rights.may_publish(topic)
                        && settings.may_publish(topic, Publisher::Granted),
                });
            };
            holders.remove(ticket);
            return Err(refusal);
        }
        match credential().as_ref().map_err(|refusal| *refusal)? {
            Credential::Token(who) if private && !who.rights.may_subscribe(topic) => Err(Refusal::NotGranted),
            credential @ (Credential::Admin | Credential::Token(_)) => Ok(Grant {
                topic: None,
                publish: credential.may_publish(settings, topic),
            }),
            Credential::None if settings.require_ticket || private => Err(Refusal::NoCredentials),
            Credential::None => Ok(Grant::default()),
        }
    }

    /// Which of a multi-topic request's `tickets` is for `topic` (looked
    /// at, not used nor dropped): a ticket names one topic.
    pub(super) fn ticket_for<'t>(&self, tickets: &'t [String], topic: &str) -> Option<&'t str> {
        if tickets.is_empty() {
            return None;
        }
        let held = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // One named for the topic first; then one good for any topic; then
        // one that is no longer good at all, so that the topic is refused
        // as a used or expired ticket is (403), not as no credential.
        let find = |wanted: Option<Option<&str>>| tickets.iter().find(|t| held.topic_of(now, t) == wanted);
        find(Some(Some(topic)))
            .or_else(|| find(Some(None)))
            .or_else(|| find(None))
            .map(String::as_str)
    }

    /// Uses up the ticket of a request about to wait for the subscribe
    /// hook (checked, not used, when it was routed), so that it is used
    /// once whatever the backend says: what it grants, to go with the
    /// backend's decision ([`Presented::ticket`]). `None`: it came with
    /// no ticket.
    pub(super) fn redeem_ticket(&self, ticket: Option<&str>, topic: &str) -> Result<Option<Grant>, Refusal> {
        let Some(ticket) = ticket else {
            return Ok(None);
        };
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        match tickets.redeem(Instant::now(), ticket, topic) {
            Ok(grant) => Ok(Some(grant)),
            Err(_) => Err(Refusal::Ticket),
        }
    }

    /// The holder of a request's `ticket` (taken: a ticket's holder is
    /// read once, by the session or long poll it opens); `None` if it
    /// came with no ticket, a default holder for a ticket the publish
    /// token asked for.
    pub(super) fn take_ticket_holder(&self, ticket: Option<&str>) -> Option<Holder> {
        let ticket = ticket?;
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            holders
                .remove(ticket)
                .map_or_else(Holder::default, |(_, holder)| Holder {
                    deadline: holder.deadline,
                    subject: holder.subject,
                    token_id: holder.token_id,
                    issued_at: holder.issued_at,
                }),
        )
    }

    /// The holder of `ticket` without taking it (a multi-topic stream is
    /// its tickets' holder's, each ticket taken by its own topic's
    /// subscription); `None` for an unknown ticket or one the publish
    /// token asked for.
    pub(super) fn peek_ticket_holder(&self, ticket: &str) -> Option<Holder> {
        let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        holders.get(ticket).map(|(_, holder)| Holder {
            deadline: holder.deadline,
            subject: holder.subject.clone(),
            token_id: holder.token_id.clone(),
            issued_at: holder.issued_at,
        })
    }

    /// Who a request that needs a credential presents (`credential`, as
    /// it was verified): the publish token or a JSON Web Token that
    /// verifies; else the refusal (counted), as when publishing over HTTP
    /// is disabled (no publish token, no tokens verified).
    pub(super) fn authenticated<'a>(
        &self,
        stats: &HubStats,
        credential: &'a Result<Credential, Refusal>,
    ) -> Result<&'a Credential, Response> {
        let settings = &self.settings;
        if settings.publish_token.is_none() && settings.auth.is_none() {
            add(&stats.refused_403, 1);
            return Err(Response::text(
                403,
                "publishing over HTTP is disabled: the server has no publish token\n",
            ));
        }
        let refusal = match credential {
            Ok(Credential::None) => Refusal::NoCredentials,
            Ok(credential) => return Ok(credential),
            Err(refusal) => *refusal,
        };
        count_refusal(stats, refusal);
        Err(refusal.response())
    }

    /// Whether a credential may read `topic` through the server API
    /// (its presence, history and numbers): the publish token any topic;
    /// a JSON Web Token one that it grants to subscribe to or publish on,
    /// or one that is not private. A topic whose subscribers the backend
    /// decides (`subscribe=hook`) is read with the token's own rights
    /// only: the backend is not asked here, and would refuse what it
    /// refuses a subscriber.
    pub(super) fn may_read(&self, credential: &Credential, topic: &str) -> bool {
        match credential {
            Credential::Admin => true,
            Credential::Token(who) => {
                let open = !self.is_private(topic) && !self.settings.subscribe_hook(topic);
                open || who.rights.may_subscribe(topic) || who.rights.may_publish(topic)
            }
            Credential::None => false,
        }
    }

    /// Checks who publishes over HTTP (`topic`) or asks for a ticket
    /// (`None`): the publish token, or a JSON Web Token whose rights grant
    /// publishing to the topic (tickets check their own). `None` if the
    /// request may go on, else the answer.
    pub(super) fn check_publisher(
        &self,
        stats: &HubStats,
        credential: &Result<Credential, Refusal>,
        topic: Option<&str>,
    ) -> Option<Response> {
        let credential = match self.authenticated(stats, credential) {
            Ok(credential) => credential,
            Err(refusal) => return Some(refusal),
        };
        let topic = topic?;
        let refusal = match credential {
            Credential::Token(who) if !who.rights.may_publish(topic) => Refusal::NotGranted,
            credential if !credential.may_publish(&self.settings, topic) => Refusal::PublishClosed,
            _ => return None,
        };
        count_refusal(stats, refusal);
        Some(refusal.response())
    }

    /// `POST /tickets`: a single-use ticket. Asked for with a token, it
    /// is issued for the token's holder (its subject and rights, until it
    /// expires); with the publish token, for the holder the body names, if
    /// it names one (claims as in a token: `{"sub":"alice","exp":T,
    /// "tether":{"sub":[...],"pub":[...]}}`), else with the publish
    /// token's own reach. `credential` is the request's, as its admission
    /// verified it.
    pub(super) fn issue_ticket(
        &self,
        stats: &HubStats,
        request: &Request<'_>,
        credential: Result<Credential, Refusal>,
        body: &[u8],
    ) -> Response {
        if request.method() != "POST" {
            return Refusal::OnlyPost.response();
        }
        if let Some(refusal) = self.check_publisher(stats, &credential, None) {
            return refusal;
        }
        let topic = request.query_param("topic").filter(|t| !t.is_empty());
        if topic.as_deref().is_some_and(|t| !is_valid_topic(t)) {
            return Refusal::BadTopic.response();
        }
        let publish = matches!(request.query_param("publish").as_deref(), Some("1" | "true"));
        if publish && topic.is_none() {
            return Response::text(400, "a ticket that grants publishing names its topic (?topic=)\n");
        }
        let now = Instant::now();
        let unix = self.unix_secs(now);
        let holder = match credential {
            // A token's holder gets a ticket with the token's subject and
            // rights, no more, and ending when the token does.
            Ok(Credential::Token(who)) => {
                if !body.is_empty() {
                    return Response::text(
                        400,
                        "only the publish token names the holder of a ticket; a token's ticket is its own\n",
                    );
                }
                let auth = self.settings.auth.as_ref();
                Some(TicketHolder {
                    subject: who.subject,
                    rights: who.rights,
                    deadline: who.expires_at.and_then(|exp| auth.map(|auth| auth.deadline(exp))),
                    token_id: who.token_id,
                    issued_at: who.issued_at,
                })
            }
            _ if body.is_empty() => None,
            _ => match TicketHolder::named_in(body, unix) {
                Ok(holder) => Some(holder),
                Err(response) => return response,
            },
        };
        if let (Some(holder), Some(topic)) = (&holder, topic.as_deref())
            && ((self.is_private(topic) && !holder.rights.may_subscribe(topic))
                || (publish && !holder.rights.may_publish(topic)))
        {
            count_refusal(stats, Refusal::NotGranted);
            return Refusal::NotGranted.response();
        }
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            return Response::text(500, "no randomness for a ticket\n");
        }
        let grant = Grant {
            topic: topic.map(Arc::from),
            publish,
        };
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        // The holders' bounds are checked before the ticket is issued: a
        // refused request leaves none behind.
        let ttl = tickets.ttl();
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(holder) = &holder {
            // As many as tickets outstanding: those whose ticket has
            // expired go first.
            if holders.len() >= self.settings.max_tickets {
                holders.retain(|_, (issued, _)| now.saturating_duration_since(*issued) < ttl);
            }
            if holders.len() >= self.settings.max_tickets {
                return super::replies::refuse(
                    503,
                    "too many tickets outstanding\n",
                    Some(super::replies::SOON),
                );
            }
            if let Some(subject) = &holder.subject
                && let Some(wait) = self.subject_full(&holders, subject, now, ttl)
            {
                log::debug!(subject = &**subject; "hub: ticket refused: its subject has too many outstanding");
                return super::replies::refuse(
                    429,
                    "too many tickets outstanding for this subject\n",
                    Some(wait),
                );
            }
        }
        match tickets.issue(now, random, grant) {
            Ok(ticket) => {
                let mut subject = String::new();
                if let Some(holder) = holder {
                    if let Some(name) = &holder.subject {
                        subject = format!(",\"sub\":{}", tether_hub::json_string(name));
                    }
                    holders.insert(ticket.clone(), (now, holder));
                }
                add(&stats.tickets_issued, 1);
                let expires_in = tickets.ttl().as_secs_f64();
                Response::json(
                    200,
                    format!("{{\"ticket\":\"{ticket}\",\"expires_in\":{expires_in}{subject}}}"),
                )
                .header("Cache-Control", "no-store")
            }
            Err(e) => error_response(&e),
        }
    }

    /// Whether `subject` holds [`HubSettings::max_tickets_per_subject`]
    /// tickets issued within `ttl` before `now` (or more): then how long
    /// until the oldest of them expires.
    fn subject_full(
        &self,
        holders: &HashMap<String, (Instant, TicketHolder)>,
        subject: &str,
        now: Instant,
        ttl: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let mut held = 0;
        let mut oldest = std::time::Duration::ZERO;
        for (issued, holder) in holders.values() {
            let age = now.saturating_duration_since(*issued);
            if age < ttl && holder.subject.as_deref() == Some(subject) {
                held += 1;
                oldest = oldest.max(age);
            }
        }
        (held >= self.settings.max_tickets_per_subject).then(|| ttl.saturating_sub(oldest))
    }

    /// What a token sent over a WebSocket subscribed (or to subscribe) to
    /// `topic` grants it at `now` (Unix seconds).
    pub(super) fn take_token(&self, token: &str, topic: &str, now: u64) -> Result<TokenGrant, TokenRefused> {
        let Some(auth) = &self.settings.auth else {
            return Err(TokenRefused::Invalid(tether_auth::Error::Malformed));
        };
        let who = auth.verify(token, now).map_err(|e| {
            log::debug!("hub: token refused: {e}");
            TokenRefused::Invalid(e)
        })?;
        if self.is_revoked(&who, now) {
            return Err(TokenRefused::Revoked);
        }
        if self.is_private(topic) && !who.rights.may_subscribe(topic) {
            return Err(TokenRefused::NotGranted);
        }
        Ok(TokenGrant {
            may_publish: (who.rights.may_publish(topic)
                && self.settings.may_publish(topic, Publisher::Granted))
                || self.settings.ws_publish_open(topic),
            holder: Holder {
                deadline: who.expires_at.map(|exp| auth.deadline(exp)),
                subject: who.subject,
                token_id: who.token_id,
                issued_at: who.issued_at,
            },
        })
    }
}
