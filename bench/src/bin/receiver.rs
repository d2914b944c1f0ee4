//! A minimal webhook receiver for bench/webhooks.sh: plain tokio TCP, HTTP/1.1 keep-alive,
//! any number of connections (no pipelining). Every request is read whole (headers, then a
//! `Content-Length` body) and answered `204 No Content`, and counted; `GET /count` is not
//! counted and is answered with the count as text, so a script can poll it.
//!
//!     receiver --listen 127.0.0.1:18091
//!
//! Prints one line, `listening on ADDR`, once it accepts connections. A request with a
//! chunked body is answered `411 Length Required` and its connection closed (Rapport and the
//! bench client always send a length).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:18091".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--listen" => listen = it.next().expect("--listen ADDR"),
            other => panic!("unknown flag {other}"),
        }
    }
    let listener = TcpListener::bind(&listen).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("address"));
    let count = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, count.clone()));
    }
}

/// Serves one connection until the peer closes it (or sends something this cannot read).
async fn serve(mut stream: TcpStream, count: Arc<AtomicU64>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        // The head: read until the blank line.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD || !fill(&mut stream, &mut buf).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let (mut length, mut chunked, mut close) = (0_usize, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                match value.parse() {
                    Ok(n) => length = n,
                    Err(_) => return,
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = !value.eq_ignore_ascii_case("identity");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            let _ = stream
                .write_all(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
        // The body: read it all, then drop the request from the buffer.
        while buf.len() < head_end + length {
            if !fill(&mut stream, &mut buf).await {
                return;
            }
        }
        buf.drain(..head_end + length);
        let answer = if request_line.starts_with("GET /count ") {
            let n = count.load(Ordering::Relaxed).to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{n}",
                n.len()
            )
        } else {
            count.fetch_add(1, Ordering::Relaxed);
            "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
        };
        if stream.write_all(answer.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// Reads more into `buf`; false at the end of the stream or on an error.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0_u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
