//! What the hub decided about one request, made once in `route` and
//! carried by the server to every later callback of the same request
//! (the hub's [`App::State`](tether_server::App::State)): its route, its
//! topic, its credential, and what the application's backend said of it.

use std::sync::Arc;
use std::time::Instant;

use tether_server::{ConnId, Request};

use super::access::{Access, Credential, Presented};
use super::routes::{Endpoint, HubRoute, Refusal, Wants};
use super::subscribers::Holder;

/// The request a callback serves: its id, its head, and the admission
/// the server carries for it.
pub(super) struct Served<'a, 'r> {
    pub(super) conn: ConnId,
    pub(super) request: &'a Request<'r>,
    pub(super) admission: &'a mut Admission,
}

/// What the hub decided about one request: made once, when the request
/// is routed, and handed by the server to each later callback of that
/// request (never to another's). Its path is parsed once and its
/// credential verified once; a callback reads them here instead of
/// working them out again.
///
/// An application that mounts the hub beside its own routes keeps it as
/// the hub's part of its own state (`tether_apps::MountState`).
#[derive(Debug)]
pub struct Admission {
    /// What the request is to the hub.
    pub(super) route: HubRoute,
    /// The rest, boxed: the server keeps an admission inline in a slot for
    /// every request under way. An open WebSocket or event stream keeps
    /// none (`HubApp`'s `keeps_session_state`): the subscriber it made
    /// holds its topic, subject and deadline in its own form.
    details: Option<Box<Details>>,
}

/// The admission lent to an open session's callbacks: the hub keeps what
/// a session needs in its own tables, by connection.
impl Default for Admission {
    fn default() -> Admission {
        Admission::new(HubRoute::Opened)
    }
}

/// What an admission knows of a request beyond its route.
#[derive(Debug, Default)]
struct Details {
    /// The topic and endpoint of a `/topics/NAME...` path.
    target: Option<(Arc<str>, Endpoint)>,
    /// Who its credential says it is, or why it is refused: `None` until
    /// a step first needs it (a ticket may make it needless).
    credential: Option<Result<Credential, Refusal>>,
    /// What the application's backend decided about the request, if it
    /// was asked: it stands for the request's own credential.
    presented: Option<Presented>,
    /// What a subscriber's query asks for, read when it was routed:
    /// `None` for nothing but the defaults.
    wants: Option<Wants>,
    /// Its `?ticket=`, read once, when it was first routed.
    ticket: Option<String>,
    /// The subject of a token taken out of `credential` (for the access
    /// log, which is written after).
    taken_subject: Option<String>,
}

impl Admission {
    /// A request that is `route`, whose path names no topic.
    pub(super) fn new(route: HubRoute) -> Admission {
        Admission { route, details: None }
    }

    /// A request routed as `route`, with its topic and endpoint (parsed
    /// once), its credential if routing verified it, the backend's
    /// decision it came with, and its ticket.
    pub(super) fn routed(
        route: HubRoute,
        target: Option<(&str, Endpoint)>,
        credential: Option<Result<Credential, Refusal>>,
        presented: Option<Presented>,
        ticket: Option<String>,
    ) -> Admission {
        let details = Details {
            target: target.map(|(topic, endpoint)| (Arc::from(topic), endpoint)),
            credential,
            presented,
            wants: None,
            ticket,
            taken_subject: None,
        };
        let empty = details.target.is_none()
            && details.credential.is_none()
            && details.presented.is_none()
            && details.ticket.is_none();
        Admission {
            route,
            details: (!empty).then(|| Box::new(details)),
        }
    }

    /// Its details, made on the first write.
    fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    /// What the backend decided about the request, if it was asked.
    pub(super) fn presented(&self) -> Option<&Presented> {
        self.details.as_ref()?.presented.as_ref()
    }

    /// The backend's decision, taken out.
    pub(super) fn take_presented(&mut self) -> Option<Presented> {
        self.details.as_mut()?.presented.take()
    }

    /// The backend's decision, given to the request.
    pub(super) fn set_presented(&mut self, presented: Presented) {
        self.details_mut().presented = Some(presented);
    }

    /// The same admission, with what its query asks for (if routing read
    /// it).
    pub(super) fn wanting(mut self, wants: Option<Wants>) -> Admission {
        if let Some(wants) = wants.filter(|wants| *wants != Wants::default()) {
            self.details_mut().wants = Some(wants);
        }
        self
    }

    /// What its query asks for: read once, when it was routed.
    pub(super) fn wants(&self) -> &Wants {
        static DEFAULTS: Wants = Wants::DEFAULT;
        self.details
            .as_ref()
            .and_then(|d| d.wants.as_ref())
            .unwrap_or(&DEFAULTS)
    }

    /// Its `?ticket=`, read when it was first routed.
    pub(super) fn ticket(&self) -> Option<&str> {
        self.details.as_ref()?.ticket.as_deref()
    }

    /// Its ticket, taken out: for routing it again.
    pub(super) fn take_ticket(&mut self) -> Option<String> {
        self.details.as_mut()?.ticket.take()
    }

    /// The topic its path names.
    pub(super) fn topic(&self) -> Option<&Arc<str>> {
        self.details.as_ref()?.target.as_ref().map(|(topic, _)| topic)
    }

    /// The endpoint its path names.
    pub(super) fn endpoint(&self) -> Option<Endpoint> {
        self.details
            .as_ref()?
            .target
            .as_ref()
            .map(|(_, endpoint)| *endpoint)
    }

    /// Who its credential says it is: verified at the first call, read
    /// after.
    pub(super) fn credential(
        &mut self,
        access: &Access,
        request: &Request<'_>,
    ) -> &Result<Credential, Refusal> {
        let details = self.details_mut();
        let presented = details.presented.as_ref();
        details
            .credential
            .get_or_insert_with(|| access.credential(request, presented, access.unix_secs(Instant::now())))
    }

    /// The credential, taken out (verified first if it was not): for a
    /// callback that is the request's last use of it.
    pub(super) fn take_credential(
        &mut self,
        access: &Access,
        request: &Request<'_>,
    ) -> Result<Credential, Refusal> {
        self.credential(access, request);
        let details = self.details_mut();
        let credential = details.credential.take().unwrap_or(Ok(Credential::None));
        if let Ok(Credential::Token(who)) = &credential {
            details.taken_subject.clone_from(&who.subject);
        }
        credential
    }

    /// Who the request is, as far as it has been told: the backend's
    /// subject, or its token's (verified, whether or not it was taken
    /// out since). A ticket's holder is not looked up here.
    pub(super) fn subject(&self) -> Option<&str> {
        let details = self.details.as_deref()?;
        if let Some(Presented {
            identity: Some(identity),
            ..
        }) = &details.presented
        {
            return identity.subject.as_deref();
        }
        match &details.credential {
            Some(Ok(Credential::Token(who))) => who.subject.as_deref(),
            _ => details.taken_subject.as_deref(),
        }
    }

    /// Whether the backend said who it is (its connect hook).
    pub(super) fn identified_by_backend(&self) -> bool {
        self.presented().is_some_and(|p| p.identity.is_some())
    }

    /// The subject of a publisher: who the backend said it is, or its
    /// ticket's holder, or its token's.
    pub(super) fn publisher_subject(&mut self, access: &Access, request: &Request<'_>) -> Option<String> {
        if self.identified_by_backend() {
            return self.token_subject(access, request);
        }
        self.credential_subject(access, request)
    }

    /// The subject its credential names: its ticket's holder's, or its
    /// token's.
    pub(super) fn credential_subject(&mut self, access: &Access, request: &Request<'_>) -> Option<String> {
        match self.ticket() {
            Some(ticket) => access.ticket_subject(ticket),
            None => self.token_subject(access, request),
        }
    }

    /// The subject its token (or the backend's decision standing for it)
    /// names.
    fn token_subject(&mut self, access: &Access, request: &Request<'_>) -> Option<String> {
        match self.credential(access, request) {
            Ok(Credential::Token(who)) => who.subject.clone(),
            _ => None,
        }
    }

    /// Who holds a subscriber's credential: its deadline is `None` if it
    /// came in without a token that expires (a ticket, the publish token,
    /// no credentials); a credential refused gives a deadline already
    /// passed. With it, the subject of the credential (the backend's, a
    /// token's, or a ticket holder's), and the token's id and `iat`.
    pub(super) fn holder(&mut self, access: &Access, request: &Request<'_>) -> Holder {
        if let Some(Presented {
            identity: Some(identity),
            ..
        }) = self.presented()
        {
            return Holder {
                deadline: identity.expires_at,
                subject: identity.subject.clone(),
                ..Holder::default()
            };
        }
        if let Some(holder) = access.take_ticket_holder(self.ticket()) {
            return holder;
        }
        let Some(auth) = access.settings().auth.as_ref() else {
            return Holder::default();
        };
        match self.credential(access, request) {
            Ok(Credential::Token(who)) => Holder {
                deadline: who.expires_at.map(|exp| auth.deadline(exp)),
                subject: who.subject.clone(),
                token_id: who.token_id.clone(),
                issued_at: who.issued_at,
            },
            Ok(_) => Holder::default(),
            Err(_) => Holder {
                deadline: Some(0),
                ..Holder::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server keeps a request's state inline, in a slot, for every
    /// request under way: all but the route is boxed.
    #[test]
    fn an_admission_is_small() {
        // The route and a pointer.
        assert!(
            size_of::<Option<Admission>>() <= 16,
            "{}",
            size_of::<Option<Admission>>()
        );
    }
}
