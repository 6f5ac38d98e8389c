//! docs/sync-protocol.md is the specification of every sync client: this
//! test runs the Python client printed in its section 7, exactly as the
//! page shows it, against the real server, next to a peerlab client, so
//! the page cannot drift from the protocol.
//!
//! Needs `python3` (standard library only). Skipped, saying so, with
//! PEERLAB_SKIP_IPV8=1 (the variable that skips the Python tests).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use peerlab_sync::client::{Hello, SyncClient};
use peerlab_sync::protocol::ClientMsg;
use peerlab_sync::server::{Admission, ServerConfig, ServerEvent, SyncServer};

/// The fenced block of `doc` whose info string is `info`.
fn block(doc: &str, info: &str) -> Option<String> {
    let start = doc.find(&format!("```{info}\n"))? + info.len() + 4;
    let len = doc[start..].find("\n```")?;
    Some(doc[start..start + len + 1].to_string())
}

#[tokio::test]
async fn the_documented_python_client_registers_waits_and_reports() {
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("skipped: PEERLAB_SKIP_IPV8=1 (the documented client is Python)");
        return;
    }
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/sync-protocol.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/sync-protocol.md");
    let script = block(&doc, "python sync-client")
        .expect("docs/sync-protocol.md has a ```python sync-client block");

    let token = "0123456789abcdef0123456789abcdef";
    let mut server = SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            token: token.into(),
            instances: 2,
            start_delay: Duration::from_millis(10),
            admission: Admission::for_run(2, 1, 1),
        },
    )
    .await
    .unwrap();
    let sync = server.local_addr();

    // Instance 1 is peerlab's own client; instance 2 is the page's.
    let mut peerlab = SyncClient::connect(
        sync,
        Hello {
            token: token.into(),
            host: "localhost".into(),
            node: 1,
            ids: vec![1],
            count: 1,
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    peerlab.send(&ClientMsg::Ready {
        id: 1,
        addr: "127.0.0.1:9".into(),
        public_key: "ab".into(),
    });
    let python = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .env("PEERLAB_SYNC", sync.to_string())
        .env("PEERLAB_RUN_TOKEN", token)
        .env("PEERLAB_INSTANCE_ID", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (install python3, or set PEERLAB_SKIP_IPV8=1)");

    let mut events = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = server.next_event().await {
            let end = matches!(e, ServerEvent::Done { id: 2, .. });
            events.push(e);
            if end {
                return true;
            }
        }
        false
    })
    .await;
    let out = python.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(done, Ok(true), "events: {events:#?}\npython: {stderr}");
    assert!(out.status.success(), "{stderr}");

    assert!(
        events.iter().any(|e| matches!(e,
            ServerEvent::Registered { ids, host, node: 1, .. } if ids == &[2] && host == "localhost")),
        "{events:#?}"
    );
    let peers = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Started { peers, .. } => Some(peers.clone()),
            _ => None,
        })
        .expect("the barrier opened");
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1].id, 2);
    assert!(peers[1].addr.starts_with("127.0.0.1:"), "{peers:?}");
    assert!(events.contains(&ServerEvent::Done {
        id: 2,
        status: peerlab_run::EndStatus::Finished,
        exit_code: None,
        error: None,
    }));
    // What the Python client printed is the peer table the server sent.
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the client prints one JSON line");
    assert_eq!(printed["peers"][0]["addr"], "127.0.0.1:9");
    assert_eq!(printed["peers"][1]["addr"], peers[1].addr.as_str());
    let start = peerlab.wait_start().await.unwrap();
    assert_eq!(printed["start_unix_ms"], start.start_unix_ms);
}
