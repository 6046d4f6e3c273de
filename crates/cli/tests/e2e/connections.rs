//! Network clients are not trusted: connections that never send a request, or send it a byte
//! at a time, cannot lock other clients out; past the connection cap new clients get a quick
//! 503 instead of a hang; and a page on another site cannot reach `sylph dev` through DNS
//! rebinding (a Host that is not the listening address is refused).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{example, request, Dev};

/// One keep-alive HTTP/1.1 request on an open connection; the status code.
fn keep_alive_get(stream: &mut TcpStream, authority: &str, path: &str) -> u16 {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed mid-response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn idle_and_trickling_connections_cannot_lock_other_clients_out() {
    let dev = Dev::start_with(
        &example("hello-node"),
        &[
            "--max-connections",
            "200",
            "--header-timeout",
            "5",
            "--idle-timeout",
            "5",
            "--prewarm",
            "0",
        ],
        &[],
    );
    let authority = dev.base.strip_prefix("http://").unwrap().to_owned();
    // A client that was already talking to the server.
    let mut regular = TcpStream::connect(&authority).unwrap();
    regular.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(keep_alive_get(&mut regular, &authority, "/_sylph/metrics"), 200);

    // One that announces a body and never sends it is answered 408 once the timeout passes.
    let mut stalled = TcpStream::connect(&authority).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stalled,
        "POST / HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 100\r\n\r\n"
    )
    .unwrap();

    // The attack: more connections than the cap, sending nothing or a byte now and then.
    let mut idle: Vec<TcpStream> = (0..250).map(|_| TcpStream::connect(&authority).unwrap()).collect();
    let mut trickling: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&authority).unwrap()).collect();
    for t in &mut trickling {
        t.write_all(b"GET /_sylph/metrics HTTP/1.1\r\nX-Slow: ").unwrap();
    }

    // Past the cap, a new client is told so at once instead of hanging.
    let mut late = TcpStream::connect(&authority).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let read = late.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer} {read:?}");

    // Meanwhile the client that was already connected keeps getting answers.
    for _ in 0..5 {
        t_trickle(&mut trickling);
        assert_eq!(keep_alive_get(&mut regular, &authority, "/_sylph/metrics"), 200);
    }

    // The server closes what never completed a request, and new clients are served again.
    let started = Instant::now();
    loop {
        t_trickle(&mut trickling);
        let r = std::panic::catch_unwind(|| request(&dev.base, "GET", "/_sylph/metrics", &[], b""));
        if matches!(r, Ok(ref r) if r.status == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "new clients were never served again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in idle.iter_mut().take(10) {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            s.read(&mut buf).unwrap_or(0),
            0,
            "the idle connection was closed by the server"
        );
    }
    assert!(
        dev.output().contains("--max-connections"),
        "the cap is logged: {}",
        dev.output()
    );
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a stalled body: {answer:?}");
}

/// Send one more header byte on each trickling connection (ignoring the ones already closed).
fn t_trickle(trickling: &mut [TcpStream]) {
    for t in trickling {
        let _ = t.write_all(b"a");
    }
}

#[test]
fn a_host_that_is_not_the_listening_address_is_refused() {
    let dev = Dev::start_with(
        &example("hello-node"),
        &["--allow-host", "dev.example.test", "--prewarm", "0"],
        &[],
    );
    let ok = request(&dev.base, "GET", "/_sylph/metrics", &[], b"");
    assert_eq!(ok.status, 200);
    // What a browser sends after a rebinding attack: the attacker's name, resolved to 127.0.0.1.
    let rebound = request_with_host(&dev.base, "attacker.example.test");
    assert_eq!(rebound.0, 403, "{}", rebound.1);
    assert!(rebound.1.contains("--allow-host"), "{}", rebound.1);
    assert_eq!(request_with_host(&dev.base, "localhost").0, 200);
    assert_eq!(
        request_with_host(&dev.base, "dev.example.test").0,
        200,
        "a name the user allowed"
    );
}

/// A GET of the metrics with the given Host header: status and body.
fn request_with_host(base: &str, host: &str) -> (u16, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let port = authority.rsplit(':').next().unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET /_sylph/metrics HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, raw)
}
