//! Tests of the sync server and client together, over loopback TCP.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::{Hello, SyncClient, SyncError};
use super::protocol::ClientMsg;
use super::server::{Admission, ServerConfig, ServerEvent, SyncServer};

const SECS: Duration = Duration::from_secs(10);

async fn server(instances: u32) -> SyncServer {
    server_with(instances, Admission::for_run(instances, 1, 1)).await
}

async fn server_with(instances: u32, admission: Admission) -> SyncServer {
    SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            token: "secret".into(),
            instances,
            start_delay: Duration::from_millis(1),
            admission,
        },
    )
    .await
    .unwrap()
}

/// Read from a raw connection until the server closes it (bounded); what
/// it sent.
async fn read_until_closed(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(SECS, conn.read(&mut buf)).await {
            Err(_) => panic!(
                "the server did not close the connection within {SECS:?}; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The next refusal the server reports.
async fn next_refusal(server: &mut SyncServer) -> String {
    loop {
        if let ServerEvent::Refused { reason, .. } = next(server).await {
            return reason;
        }
    }
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
        status: peerlab_run::EndStatus::Finished,
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

#[tokio::test]
async fn a_hello_listing_an_id_twice_is_refused() {
    let server = server(3).await;
    let twice =
        SyncClient::connect(server.local_addr(), hello("secret", vec![2, 2], 0), SECS).await;
    assert!(
        matches!(&twice, Err(SyncError::Refused(r)) if r.contains("instance id 2 is listed twice")),
        "{:?}",
        twice.as_ref().err()
    );
    // Nothing was taken: the ids are still free.
    let ok = SyncClient::connect(server.local_addr(), hello("secret", vec![2], 0), SECS)
        .await
        .unwrap();
    assert_eq!(ok.ids, vec![2]);
}

#[tokio::test]
async fn an_oversize_first_line_is_refused_once_the_limit_is_read() {
    let admission = Admission::for_run(4, 1, 1);
    let mut server = server_with(4, admission).await;
    let mut conn = TcpStream::connect(server.local_addr()).await.unwrap();
    // Far beyond the hello limit, far below the 16 MiB line limit after
    // admission: the server must not wait for the line's end.
    let junk = vec![b'x'; 64 * admission.hello_line];
    let _ = conn.write_all(&junk).await;
    let said = read_until_closed(&mut conn).await;
    assert!(
        said.contains("refused") && said.contains("longer than"),
        "{said:?}"
    );
    let reason = next_refusal(&mut server).await;
    assert!(
        reason.contains(&format!("longer than {} bytes", admission.hello_line)),
        "{reason}"
    );
    assert_eq!(server.admission_stats().oversize, 1);
}

#[tokio::test]
async fn a_connection_without_a_hello_is_closed_after_the_hello_timeout() {
    let admission = Admission {
        hello_timeout: Duration::from_millis(200),
        ..Admission::for_run(4, 1, 1)
    };
    let mut server = server_with(4, admission).await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(server.local_addr()).await.unwrap();
    let said = read_until_closed(&mut idle).await;
    assert!(started.elapsed() >= admission.hello_timeout);
    assert!(said.contains("no hello within 0.2 s"), "{said:?}");
    assert!(next_refusal(&mut server).await.contains("no hello"));
    assert_eq!(server.admission_stats().hello_timeouts, 1);
    // A process that does say hello in time is not affected.
    let ok = SyncClient::connect(server.local_addr(), hello("secret", vec![], 1), SECS).await;
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[tokio::test]
async fn when_too_many_wait_for_their_hello_the_oldest_go_and_a_late_process_still_registers() {
    let admission = Admission {
        max_waiting: 4,
        report_window: Duration::from_millis(100),
        ..Admission::for_run(2, 1, 1)
    };
    let mut server = server_with(2, admission).await;
    let addr = server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // The six oldest idle connections are closed to keep four waiting.
    for (i, conn) in idle.iter_mut().take(6).enumerate() {
        let said = read_until_closed(conn).await;
        assert!(said.contains("already waiting"), "connection {i}: {said:?}");
    }
    // The registration that comes last still gets in (closing another).
    let late = SyncClient::connect(addr, hello("secret", vec![2], 0), SECS).await;
    assert_eq!(late.map(|c| c.ids).ok(), Some(vec![2]));
    assert!(server.admission_stats().evicted >= 6);
    // Each refusal is counted, but only the first few are reported one by one.
    let mut reported = 0;
    let mut more = 0;
    while reported + more < server.admission_stats().refused {
        match next(&mut server).await {
            ServerEvent::Refused { .. } => reported += 1,
            ServerEvent::RefusalsNotReported { count, .. } => more += count,
            _ => {}
        }
    }
    assert_eq!(reported, u64::from(super::server::LOG_BURST));
}

#[tokio::test]
async fn the_largest_legitimate_hello_fits_the_limit() {
    // One process hosting every one of 100,000 instances lists them all.
    let ids: Vec<u32> = (1..=100_000).collect();
    let server = server_with(100_000, Admission::for_run(100_000, 100_000, 1)).await;
    let client = SyncClient::connect(server.local_addr(), hello("secret", ids, 0), SECS)
        .await
        .unwrap();
    assert_eq!(client.ids.len(), 100_000);
}

#[tokio::test]
async fn once_admitted_a_process_may_send_lines_longer_than_a_hello() {
    let admission = Admission::for_run(1, 1, 1);
    let mut server = server_with(1, admission).await;
    let client = SyncClient::connect(server.local_addr(), hello("secret", vec![1], 0), SECS)
        .await
        .unwrap();
    let long = "e".repeat(20 * admission.hello_line);
    client.send(&ClientMsg::Done {
        id: 1,
        status: peerlab_run::EndStatus::Failed,
        exit_code: None,
        error: Some(long.clone()),
    });
    loop {
        match next(&mut server).await {
            ServerEvent::Done { error, .. } => {
                assert_eq!(error.as_deref(), Some(long.as_str()));
                break;
            }
            ServerEvent::Refused { reason, .. } => panic!("refused: {reason}"),
            _ => {}
        }
    }
}
