//! The instance side of the sync protocol: one connection per process,
//! shared by the process's instances.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, LinesCodec};

use super::protocol::{ClientMsg, MAX_LINE, ServerMsg, StartInfo};

/// Why talking to the sync server failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the sync server at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the sync server at {addr} did not answer within {secs} s")]
    ConnectTimeout { addr: SocketAddr, secs: u64 },
    #[error("the sync server refused this process: {0}")]
    Refused(String),
    #[error("the run was aborted: {0}")]
    Aborted(String),
    #[error("the sync server closed the connection")]
    Closed,
    #[error("the sync server sent something unexpected: {0}")]
    Protocol(String),
}

/// A registered connection to the sync server.
pub struct SyncClient {
    /// The instance ids this process runs.
    pub ids: Vec<u32>,
    /// How many instances the whole run has.
    pub instances: u32,
    outgoing: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Result<ServerMsg, SyncError>>,
    writer: JoinHandle<()>,
}

/// Who this process is, for the hello.
#[derive(Debug, Clone)]
pub struct Hello {
    pub token: String,
    pub host: String,
    pub node: u32,
    pub ids: Vec<u32>,
    pub count: u32,
}

impl SyncClient {
    /// Connect, present the token and get this process's instance ids.
    pub async fn connect(
        addr: SocketAddr,
        hello: Hello,
        timeout: Duration,
    ) -> Result<Self, SyncError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| SyncError::ConnectTimeout {
                addr,
                secs: timeout.as_secs(),
            })?
            .map_err(|source| SyncError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
        let (mut sink, mut stream) = framed.split();
        let (outgoing, mut out_rx) = mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            while let Some(line) = out_rx.recv().await {
                if sink.send(line).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let (in_tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(line) = stream.next().await {
                let msg = match line {
                    Ok(line) => serde_json::from_str::<ServerMsg>(&line)
                        .map_err(|err| SyncError::Protocol(err.to_string())),
                    Err(err) => Err(SyncError::Protocol(err.to_string())),
                };
                if in_tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let mut client = Self {
            ids: Vec::new(),
            instances: 0,
            outgoing,
            incoming,
            writer,
        };
        client.send(&ClientMsg::Hello {
            token: hello.token,
            host: hello.host,
            node: hello.node,
            pid: std::process::id(),
            ids: hello.ids,
            count: hello.count,
        });
        match client.recv().await? {
            ServerMsg::Welcome { ids, instances } => {
                client.ids = ids;
                client.instances = instances;
                Ok(client)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Queue a message; it is written in order by a background task.
    pub fn send(&self, msg: &ClientMsg) {
        let line = serde_json::to_string(msg).expect("client messages serialise");
        let _ = self.outgoing.send(line);
    }

    /// The next message from the server, with refusals and aborts as errors.
    pub async fn recv(&mut self) -> Result<ServerMsg, SyncError> {
        match self.incoming.recv().await {
            None => Err(SyncError::Closed),
            Some(Err(err)) => Err(err),
            Some(Ok(ServerMsg::Refused { reason })) => Err(SyncError::Refused(reason)),
            Some(Ok(ServerMsg::Abort { reason })) => Err(SyncError::Aborted(reason)),
            Some(Ok(msg)) => Ok(msg),
        }
    }

    /// Wait at the barrier until the server sends the start.
    pub async fn wait_start(&mut self) -> Result<StartInfo, SyncError> {
        match self.recv().await? {
            ServerMsg::Start(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Flush every queued message and close the connection.
    pub async fn close(self) {
        let Self {
            outgoing, writer, ..
        } = self;
        drop(outgoing);
        let _ = writer.await;
    }
}

fn unexpected(msg: ServerMsg) -> SyncError {
    SyncError::Protocol(format!("unexpected {msg:?}"))
}
