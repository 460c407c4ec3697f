//! Raw HTTP over the daemon's Unix socket (for requests the real client never sends:
//! malformed JSON, oversized bodies, silent clients) and over loopback TCP (the emulator's
//! control routes).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends raw bytes on a new connection and reads the whole answer (the daemon closes each
/// connection after one request).
pub fn raw(socket: &Path, request: &[u8]) -> Answer {
    let mut stream = UnixStream::connect(socket).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The daemon may answer (413) and close before it has read everything we send.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse(&answer)
}

/// A well-formed request with a body.
pub fn request(socket: &Path, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(socket, text.as_bytes())
}

fn parse(answer: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Answer { status, body }
}

/// Sends raw bytes to a loopback TCP port and reads the whole answer.
pub fn tcp_raw(port: u16, request: &[u8]) -> Answer {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse(&answer)
}

/// A request to the daemon's loopback TCP port with the given Host header (none if `None`)
/// and token.
pub fn tcp_api(
    port: u16,
    method: &str,
    path: &str,
    host: Option<&str>,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "{method} {path} HTTP/1.1\r\n{host}{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp_raw(port, text.as_bytes())
}

/// A request to a loopback TCP port; returns the body.
pub fn tcp_request(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = parse(&answer);
    assert!(
        answer.status < 400,
        "{method} {path}: HTTP {}: {}",
        answer.status,
        answer.body
    );
    answer.body
}
