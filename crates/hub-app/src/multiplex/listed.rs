//! The topics a multi-topic event stream or long poll lists
//! (`?topic=A&topic=B`), and the tickets it brings (`?ticket=`, one per
//! topic that needs one), read from its query and checked before anything
//! starts.

use tether_hub::is_valid_topic;
use tether_server::Request;

/// What a multi-topic request lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Listed {
    /// In the order the request lists them: the order its cursor is for.
    pub(crate) topics: Vec<String>,
    pub(crate) tickets: Vec<String>,
}

/// Why a list of topics is refused (400), before the stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFault {
    /// No `topic=` at all.
    Empty,
    /// A name that is no topic's.
    Invalid,
    /// A topic listed twice.
    Twice,
    /// More topics, or tickets, than a connection may follow (the limit).
    TooMany(u32),
}

impl ListFault {
    /// The 400's text.
    pub(crate) fn message(self) -> String {
        match self {
            ListFault::Empty => "list the topics to follow: ?topic=A&topic=B\n".to_owned(),
            ListFault::Invalid => format!("{}\n", tether_hub::Error::InvalidTopic),
            ListFault::Twice => "a topic is listed twice\n".to_owned(),
            ListFault::TooMany(max) => format!("a connection follows at most {max} topics\n"),
        }
    }
}

/// The topics and tickets `request` lists, at most `max` of each: read
/// no further than one past the limit, so that a list of ten thousand
/// costs what one past the limit does.
pub(crate) fn listed(request: &Request<'_>, max: usize) -> Result<Listed, ListFault> {
    read_list(request.query_params("topic"), request.query_params("ticket"), max)
}

fn read_list(
    listed_topics: impl Iterator<Item = String>,
    listed_tickets: impl Iterator<Item = String>,
    max: usize,
) -> Result<Listed, ListFault> {
    let too_many = || ListFault::TooMany(u32::try_from(max).unwrap_or(u32::MAX));
    let mut topics: Vec<String> = Vec::new();
    for topic in listed_topics {
        if topics.len() == max {
            return Err(too_many());
        }
        if !is_valid_topic(&topic) {
            return Err(ListFault::Invalid);
        }
        if topics.contains(&topic) {
            return Err(ListFault::Twice);
        }
        topics.push(topic);
    }
    if topics.is_empty() {
        return Err(ListFault::Empty);
    }
    let mut tickets = Vec::new();
    for ticket in listed_tickets {
        if tickets.len() == max {
            return Err(too_many());
        }
        tickets.push(ticket);
    }
    Ok(Listed { topics, tickets })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `query`'s values of `name`, as `Request::query_params` reads them.
    fn values<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = String> + 'q {
        query.split('&').filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| value.replace("%0A", "\n"))
        })
    }

    fn read(query: &str, max: usize) -> Result<Listed, ListFault> {
        read_list(values(query, "topic"), values(query, "ticket"), max)
    }

    #[test]
    fn a_list_is_read_in_order_and_refused_whole_for_any_fault() {
        let listed = read("topic=a&ticket=t1&topic=b.c&x=1&ticket=t2", 4).unwrap();
        assert_eq!(listed.topics, ["a", "b.c"]);
        assert_eq!(listed.tickets, ["t1", "t2"]);
        assert_eq!(read("x=1", 4), Err(ListFault::Empty));
        assert_eq!(read("topic=a&topic=", 4), Err(ListFault::Invalid));
        assert_eq!(read("topic=a&topic=b%0Ac", 4), Err(ListFault::Invalid));
        assert_eq!(read("topic=a&topic=b&topic=a", 4), Err(ListFault::Twice));
        assert_eq!(read("topic=a&topic=b&topic=c", 2), Err(ListFault::TooMany(2)));
        assert_eq!(
            read("topic=a&ticket=1&ticket=2&ticket=3", 2),
            Err(ListFault::TooMany(2))
        );
        let many: Vec<String> = (0..10_000).map(|i| format!("topic=t{i}")).collect();
        assert_eq!(read(&many.join("&"), 128), Err(ListFault::TooMany(128)));
    }
}
