//! The pub/sub hub on port 8080, events in memory, until Ctrl-C:
//!
//! ```sh
//! cargo run -p tether-node --example hub
//! curl -N localhost:8080/topics/news/events &
//! curl -H 'Authorization: Bearer change-me' -d hello localhost:8080/topics/news
//! ```

use tether_node::{HubNode, NodeConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = NodeConfig::new("127.0.0.1:8080".parse()?);
    config.hub.publish_token = Some("change-me".to_owned());
    HubNode::new(config)?.run()?;
    Ok(())
}
