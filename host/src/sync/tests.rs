//! Tests of the sync server and client together, over loopback TCP.

use std::time::Duration;

use super::client::{Hello, SyncClient, SyncError};
use super::protocol::ClientMsg;
use super::server::{ServerConfig, ServerEvent, SyncServer};

const SECS: Duration = Duration::from_secs(10);

async fn server(instances: u32) -> SyncServer {
    SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            token: "secret".into(),
            instances,
            start_delay: Duration::from_millis(1),
        },
    )
    .await
    .unwrap()
}

fn hello(token: &str, ids: Vec<u32>, count: u32) -> Hello {
    Hello {
        token: token.into(),
        host: "localhost".into(),
        node: 1,
        ids,
        count,
    }
}

async fn next(server: &mut SyncServer) -> ServerEvent {
    tokio::time::timeout(SECS, server.next_event())
        .await
        .expect("server event in time")
        .expect("server running")
}

#[tokio::test]
async fn wrong_token_is_refused_and_reported() {
    let mut server = server(1).await;
    let err = SyncClient::connect(server.local_addr(), hello("guess", vec![], 1), SECS)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, SyncError::Refused(r) if r.contains("wrong run token")),
        "{err}"
    );
    match next(&mut server).await {
        ServerEvent::Refused { reason, .. } => assert!(reason.contains("token")),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn barrier_releases_everyone_with_the_full_peer_table() {
    let mut server = server(3).await;
    let addr = server.local_addr();
    let mut a = SyncClient::connect(addr, hello("secret", vec![1, 2], 0), SECS)
        .await
        .unwrap();
    let mut b = SyncClient::connect(addr, hello("secret", vec![], 1), SECS)
        .await
        .unwrap();
    assert_eq!(a.ids, vec![1, 2]);
    assert_eq!(b.ids, vec![3], "count-based registration takes the free id");
    assert_eq!(a.instances, 3);
    for id in [1, 2] {
        a.send(&ClientMsg::Ready {
            id,
            addr: format!("127.0.0.1:{id}"),
            public_key: format!("{id:02x}"),
        });
    }
    b.send(&ClientMsg::Ready {
        id: 3,
        addr: "127.0.0.1:3".into(),
        public_key: "03".into(),
    });
    let start_a = tokio::time::timeout(SECS, a.wait_start())
        .await
        .unwrap()
        .unwrap();
    let start_b = tokio::time::timeout(SECS, b.wait_start())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(start_a, start_b);
    let ids: Vec<u32> = start_a.peers.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let mut started = false;
    while !started {
        started = matches!(next(&mut server).await, ServerEvent::Started { .. });
    }
}

#[tokio::test]
async fn an_id_cannot_be_taken_twice_or_out_of_range() {
    let server = server(2).await;
    let addr = server.local_addr();
    let _a = SyncClient::connect(addr, hello("secret", vec![1], 0), SECS)
        .await
        .unwrap();
    let twice = SyncClient::connect(addr, hello("secret", vec![1], 0), SECS).await;
    assert!(matches!(twice, Err(SyncError::Refused(r)) if r.contains("already registered")));
    let outside = SyncClient::connect(addr, hello("secret", vec![3], 0), SECS).await;
    assert!(matches!(outside, Err(SyncError::Refused(r)) if r.contains("outside 1..=2")));
}

#[tokio::test]
async fn a_vanished_process_is_reported_with_its_unfinished_instances() {
    let mut server = server(2).await;
    let addr = server.local_addr();
    let a = SyncClient::connect(addr, hello("secret", vec![1, 2], 0), SECS)
        .await
        .unwrap();
    a.send(&ClientMsg::Done {
        id: 1,
        status: "finished".into(),
        exit_code: None,
        error: None,
    });
    a.close().await;
    let mut seen_done = false;
    loop {
        match next(&mut server).await {
            ServerEvent::Done { id: 1, .. } => seen_done = true,
            ServerEvent::Disconnected { ids, all } => {
                assert_eq!(all, vec![1, 2]);
                assert!(seen_done, "done arrives before the disconnect");
                assert_eq!(ids, vec![2]);
                break;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn abort_reaches_every_process() {
    let server = server(2).await;
    let mut a = SyncClient::connect(server.local_addr(), hello("secret", vec![1], 0), SECS)
        .await
        .unwrap();
    server.abort_all("timeout");
    let err = tokio::time::timeout(SECS, a.recv())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SyncError::Aborted(r) if r == "timeout"));
}

#[tokio::test]
async fn progress_reports_add_up_over_processes() {
    let mut server = server(2).await;
    let addr = server.local_addr();
    let a = SyncClient::connect(addr, hello("secret", vec![1], 0), SECS)
        .await
        .unwrap();
    let b = SyncClient::connect(addr, hello("secret", vec![2], 0), SECS)
        .await
        .unwrap();
    a.send(&ClientMsg::Progress { commands: 3 });
    b.send(&ClientMsg::Progress { commands: 4 });
    a.send(&ClientMsg::Progress { commands: 5 });
    let mut last = 0;
    while last != 9 {
        if let ServerEvent::Progress { commands } = next(&mut server).await {
            assert!(commands >= last, "the total never goes back");
            last = commands;
        }
    }
}
