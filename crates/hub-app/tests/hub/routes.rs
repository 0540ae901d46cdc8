//! What the hub answers outside its routes.

use tether_testkit as common;

use common::HttpConn;

use crate::helpers::{HubServer, request, settings};

#[test]
fn unknown_hub_paths_and_methods() {
    let server = HubServer::start(settings());
    assert_eq!(common::get(server.addr, "/topics/a/nope").status, 404);
    assert_eq!(common::get(server.addr, "/elsewhere").status, 404);
    assert_eq!(common::get(server.addr, "/topics/").status, 400);
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/metrics", "", b"").status, 405);
}
