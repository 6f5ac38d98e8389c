//! The sync protocol's messages: one JSON object per line, tagged by `type`.

use serde::{Deserialize, Serialize};

/// Environment variable carrying the run token to instance processes (not
/// on the command line, where `ps` would show it).
pub const TOKEN_ENV: &str = "PEERLAB_RUN_TOKEN";

/// The longest line either side accepts; a peer table of 10,000 instances
/// fits comfortably.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// From an instance process to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message: authenticate and ask for instance ids.
    Hello {
        token: String,
        /// Where the process runs (host name as the runner knows it).
        host: String,
        /// Node number on that host's runner (1-based).
        node: u32,
        pid: u32,
        /// The ids the runner planned for this process; empty = assign `count`.
        #[serde(default)]
        ids: Vec<u32>,
        #[serde(default)]
        count: u32,
    },
    /// One instance is set up and listening.
    Ready {
        id: u32,
        addr: String,
        /// Hex of the instance's public key (py-ipv8 key bytes).
        public_key: String,
    },
    /// How far this process's instances are: scenario commands fired so
    /// far, all instances together (sent about once a second).
    Progress { commands: u64 },
    /// One instance has finished (for any reason).
    Done {
        id: u32,
        /// A word this version does not know reads as `Unknown`.
        status: peerlab_run::EndStatus,
        #[serde(default)]
        exit_code: Option<i32>,
        #[serde(default)]
        error: Option<String>,
    },
}

/// From the server to an instance process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Registration accepted: these are your instance ids, of `instances`.
    Welcome { ids: Vec<u32>, instances: u32 },
    /// Registration refused; the connection closes after this.
    Refused { reason: String },
    /// Everyone is ready: here is everyone, start the clock at `start_unix_ms`.
    Start(StartInfo),
    /// The run is over for you (timeout, Ctrl-C, another failure): stop now.
    Abort { reason: String },
}

/// The barrier's result: the peer table and the common start time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartInfo {
    pub start_unix_ms: u64,
    pub peers: Vec<PeerEntry>,
}

/// One instance as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    pub id: u32,
    pub addr: String,
    pub public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json_lines() {
        let hello = ClientMsg::Hello {
            token: "t".into(),
            host: "localhost".into(),
            node: 1,
            pid: 7,
            ids: vec![1, 2],
            count: 0,
        };
        let line = serde_json::to_string(&hello).unwrap();
        assert!(line.starts_with(r#"{"type":"hello""#), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<ClientMsg>(&line).unwrap(), hello);
        let start = ServerMsg::Start(StartInfo {
            start_unix_ms: 5,
            peers: vec![PeerEntry {
                id: 1,
                addr: "127.0.0.1:1".into(),
                public_key: "00".into(),
            }],
        });
        let line = serde_json::to_string(&start).unwrap();
        assert_eq!(serde_json::from_str::<ServerMsg>(&line).unwrap(), start);
    }
}
