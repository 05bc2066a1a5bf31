//! A tiny HTTP/1.1 file server on 127.0.0.1 for the download tests: serves
//! fixture files with `Range` support and can misbehave on purpose (errors,
//! truncated bodies, ignored ranges, delays). It counts requests per path.
//!
//! Hand-written on tokio's TcpListener so that misbehaving is easy (a real
//! server library would not send a short body) and no extra crate is needed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the server does for one path.
#[derive(Clone, Debug, Default)]
pub struct Fixture {
    pub body: Vec<u8>,
    /// Answer the first N requests with HTTP 500.
    pub fail_first: usize,
    /// Always answer with this status and an empty body.
    pub status: Option<u16>,
    /// Close the connection after `truncate_at` body bytes in the first N responses…
    pub truncate_first: usize,
    /// …or in every response.
    pub truncate_always: bool,
    pub truncate_at: usize,
    /// Answer `Range` requests with the whole file and 200, like some servers do.
    pub ignore_range: bool,
    /// Wait this long before answering (to make concurrent fetches overlap).
    pub delay: Duration,
}

impl Fixture {
    pub fn file(body: impl Into<Vec<u8>>) -> Self {
        Fixture {
            body: body.into(),
            ..Fixture::default()
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Fixture>,
    hits: HashMap<String, usize>,
    log: Vec<Request>,
}

pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, st).await;
                });
            }
        });
        TestServer { addr, state, task }
    }

    pub fn route(&self, path: &str, fixture: Fixture) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), fixture);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    pub fn requests(&self, path: &str) -> Vec<Request> {
        let st = self.state.lock().unwrap();
        st.log.iter().filter(|r| r.path == path).cloned().collect()
    }
}

enum Reply {
    Status(u16),
    Body {
        status: u16,
        headers: Vec<String>,
        body: Vec<u8>,
        send: usize,
        delay: Duration,
    },
}

async fn handle(mut conn: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());

    let reply = {
        let mut st = state.lock().unwrap();
        st.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        let hit = {
            let h = st.hits.entry(path.clone()).or_insert(0);
            *h += 1;
            *h
        };
        match st.routes.get(&path) {
            None => Reply::Status(404),
            Some(f) if f.status.is_some() => Reply::Status(f.status.unwrap()),
            Some(f) if hit <= f.fail_first => Reply::Status(500),
            Some(f) => {
                let len = f.body.len();
                let start = range
                    .as_deref()
                    .filter(|_| !f.ignore_range)
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|s| s.parse::<usize>().ok());
                let successes = hit - f.fail_first;
                let truncate = f.truncate_always || successes <= f.truncate_first;
                match start {
                    Some(s) if s >= len => Reply::Body {
                        status: 416,
                        headers: vec![format!("Content-Range: bytes */{len}")],
                        body: Vec::new(),
                        send: 0,
                        delay: f.delay,
                    },
                    Some(s) => {
                        let body = f.body[s..].to_vec();
                        Reply::Body {
                            status: 206,
                            headers: vec![format!("Content-Range: bytes {s}-{}/{len}", len - 1)],
                            send: if truncate {
                                f.truncate_at.min(body.len())
                            } else {
                                body.len()
                            },
                            body,
                            delay: f.delay,
                        }
                    }
                    None => Reply::Body {
                        status: 200,
                        headers: Vec::new(),
                        send: if truncate {
                            f.truncate_at.min(len)
                        } else {
                            len
                        },
                        body: f.body.clone(),
                        delay: f.delay,
                    },
                }
            }
        }
    };

    match reply {
        Reply::Status(code) => {
            let msg = format!(
                "HTTP/1.1 {code} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                reason(code)
            );
            conn.write_all(msg.as_bytes()).await?;
        }
        Reply::Body {
            status,
            headers,
            body,
            send,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for h in headers {
                head.push_str(&h);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            conn.write_all(head.as_bytes()).await?;
            // Content-Length announces the whole body; sending less and
            // closing is exactly what a dropped connection looks like.
            conn.write_all(&body[..send]).await?;
        }
    }
    conn.flush().await?;
    conn.shutdown().await
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
