//! A WebSocket chat as API Gateway runs it: an authorizer on `$connect`, connections kept in
//! a table by `$connect`/`$disconnect`, messages routed by `action` and broadcast through the
//! `@connections` API by the SDK's ApiGatewayManagementApi client, `$default` answering on the
//! connection, and the management API's GetConnection/DeleteConnection.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::harness::{repo_root, Dev};

type Client = WebSocket<MaybeTlsStream<TcpStream>>;

fn ws_url(dev: &Dev, query: &str) -> String {
    format!("{}/dev{query}", dev.base.replacen("http://", "ws://", 1))
}

fn connect(dev: &Dev, query: &str) -> Result<Client, u16> {
    match tungstenite::connect(ws_url(dev, query)) {
        Ok((socket, _)) => {
            if let MaybeTlsStream::Plain(s) = socket.get_ref() {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            }
            Ok(socket)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("cannot connect: {e}"),
    }
}

/// The next text message, as JSON.
fn receive(client: &mut Client) -> Value {
    loop {
        match client.read().expect("a message") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn connections(dev: &Dev) -> Vec<(String, String)> {
    let r = dev.send(
        "POST",
        "/",
        &[("X-Amz-Target", "DynamoDB_20120810.Scan")],
        br#"{"TableName":"chat-dev-connections"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut out: Vec<(String, String)> = r.json()["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"]["S"].as_str().unwrap().to_owned(),
                i["connectionId"]["S"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn wait_for_connections(dev: &Dev, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = connections(dev);
        if now.len() == n {
            return now;
        }
        assert!(Instant::now() < deadline, "expected {n} connections, have {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_websocket_chat_connects_broadcasts_and_disconnects() {
    let dev = Dev::start(&repo_root().join("crates/cli/tests/fixtures/chat-service/serverless.yml"));
    assert!(dev.output().contains("(sendMessage)"), "{}", dev.output());

    // The authorizer decides who connects; $connect never runs for the refused.
    assert_eq!(connect(&dev, "").err(), Some(401));
    assert_eq!(connect(&dev, "?token=guess&name=mallory").err(), Some(403));
    assert!(connections(&dev).is_empty());

    let mut alice = connect(&dev, "?token=letmein&name=alice").unwrap();
    let mut bob = connect(&dev, "?token=letmein&name=bob").unwrap();
    let ids = wait_for_connections(&dev, 2);
    assert_eq!((ids[0].0.as_str(), ids[1].0.as_str()), ("alice", "bob"));

    // A routed message, broadcast to every connection by PostToConnection.
    alice
        .send(Message::text(
            json!({"action": "sendMessage", "text": "hello, all"}).to_string(),
        ))
        .unwrap();
    let expected = json!({"from": "alice", "text": "hello, all"});
    assert_eq!(receive(&mut alice), expected);
    assert_eq!(receive(&mut bob), expected);

    // No route for the action: $default, whose answer comes back on the connection.
    bob.send(Message::text(r#"{"action":"dance"}"#)).unwrap();
    assert_eq!(
        receive(&mut bob),
        json!({"echo": r#"{"action":"dance"}"#, "route": "$default"})
    );

    // The management API from outside: describe, then close, a connection.
    let bob_id = ids[1].1.clone();
    assert!(!bob_id.contains(['/', '+', '=']), "ids are one path segment: {bob_id}");
    let path = format!("/dev/@connections/{bob_id}");
    let described = dev.get(&path);
    assert_eq!(described.status, 200, "{}", described.text());
    assert!(described.json()["ConnectedAt"].is_string() && described.json()["Identity"]["SourceIp"].is_string());
    assert_eq!(dev.send("DELETE", &path, &[], b"").status, 204);
    loop {
        match bob.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    // $disconnect removed it from the table; the API says it is gone.
    let left = wait_for_connections(&dev, 1);
    assert_eq!(left[0].0, "alice");
    let gone = dev.get(&path);
    assert_eq!(gone.status, 410, "{}", gone.text());
    assert_eq!(gone.header("x-amzn-errortype"), Some("GoneException"));

    // A message over API Gateway's 128 KB closes the connection, and only it.
    let mut carol = connect(&dev, "?token=letmein&name=carol").unwrap();
    wait_for_connections(&dev, 2);
    let _ = carol.send(Message::text("x".repeat(200 * 1024)));
    let closed = loop {
        match carol.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    assert!(closed.is_none() || closed == Some(1009), "{closed:?}");
    wait_for_connections(&dev, 1);
    alice
        .send(Message::text(
            json!({"action": "sendMessage", "text": "still here"}).to_string(),
        ))
        .unwrap();
    assert_eq!(receive(&mut alice), json!({"from": "alice", "text": "still here"}));
}

/// On a server, a deploy retires the version whose functions a connection talks to: its
/// clients get a close frame, and reconnect to the version that serves now.
#[test]
fn a_deploy_closes_the_websockets_of_the_version_it_retires() {
    let server = crate::harness::Server::start_fresh("ws");
    let key = server.admin_key.clone();
    let config = repo_root().join("crates/cli/tests/fixtures/chat-service/serverless.yml");
    let api = server.deploy(&key, &config)["api_id"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/apis/{api}/dev?token=letmein&name=ada",
        server.base.replacen("http://", "ws://", 1)
    );
    let (mut ada, _) = tungstenite::connect(url.as_str()).expect("connects to the deployed API");
    if let MaybeTlsStream::Plain(s) = ada.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    ada.send(Message::text(r#"{"action":"dance"}"#)).unwrap();
    assert_eq!(receive(&mut ada)["route"], "$default");
    server.deploy(&key, &config);
    let closed = loop {
        match ada.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(closed, Some(1000));
    // The new version takes connections.
    let (mut again, _) = tungstenite::connect(url.as_str()).expect("reconnects");
    again.send(Message::text(r#"{"action":"dance"}"#)).unwrap();
    assert_eq!(receive(&mut again)["route"], "$default");
}
