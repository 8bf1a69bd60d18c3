//! `micro demo` against the real stack: it passes when everything arrives,
//! and fails, naming what is missing, when an event cannot arrive.

use std::net::SocketAddr;

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Env, run};

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}"))
}

#[tokio::test]
async fn the_demo_passes_and_leaves_no_key_and_no_file_behind() {
    let env = Env::start().await;
    let output = env.run(&["demo", "--format", "json", "--timeout", "30"]).await;
    assert_eq!(output.code, 0, "{output:#?}");
    let report = report(&output.stdout);
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]));

    let rows = report["events"]["rows"].as_array().expect("rows");
    let mut kinds: Vec<&str> = rows.iter().map(|r| r["type"].as_str().expect("type")).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "payment.canceled",
            "payment.created",
            "payment.created",
            "payment.created",
            "payment.created",
            "payment.failed",
            "payment.refunded",
            "payment.succeeded",
            "payment.succeeded",
        ]
    );
    for row in rows {
        assert_eq!(row["arrivals"], 1, "{row:#}");
        assert_eq!(row["verified"], true, "{row:#}");
        assert_eq!(row["delivery"]["status"], 200, "{row:#}");
    }

    // 2000 twice, each less its fee; the second refunded whole.
    let fees = &env.stack.config.payments;
    let fee = (2000 * fees.fee_basis_points + 5000) / 10000 + fees.fee_fixed_cents;
    assert_eq!(report["ledger"]["expected_change"]["usd"], 2000 - 2 * fee);
    assert_eq!(report["ledger"]["matched"], true);
    let after = report["ledger"]["after"].as_array().expect("accounts");
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0]["balance"], 2000 - 2 * fee);

    // The key is revoked in the auth database itself, not only in the report.
    assert_eq!(report["api_key_revoked"], true);
    let auth = sqlx::PgPool::connect(env.stack.config.auth.database.url.expose_secret())
        .await
        .expect("the auth database");
    let (keys, live): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE k.revoked_at IS NULL)
           FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.email = $1",
    )
    .bind(report["email"].as_str().expect("email"))
    .fetch_one(&auth)
    .await
    .expect("the keys");
    assert_eq!((keys, live), (1, 0));
    auth.close().await;

    // Credentials stayed in memory: nothing in the config directory.
    let written: Vec<_> = std::fs::read_dir(env.config.path()).expect("readable").collect();
    assert!(written.is_empty(), "{written:?}");
}

/// A relay to `upstream` that passes every byte through, except the event
/// stream's text frames that contain `marker`: a middlebox that loses some
/// events while the stream stays up.
async fn lossy_gateway(upstream: SocketAddr, marker: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, upstream, marker));
        }
    });
    format!("http://{addr}")
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, marker: &'static str) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // Enough of the first request to see its line; a stream connection
    // carries nothing else.
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.contains(&b'\n') {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    if server.write_all(&head).await.is_err() {
        return;
    }
    if !head.starts_with(b"GET /v1/events/stream") {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut server_read = BufReader::new(server_read);
    // The handshake's answer, as it is.
    loop {
        let mut line = Vec::new();
        match server_read.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if client_write.write_all(&line).await.is_err() {
            return;
        }
        if line == b"\r\n" {
            break;
        }
    }
    // Then WebSocket frames (RFC 6455 section 5.2), each whole.
    loop {
        let mut frame = vec![0u8; 2];
        if server_read.read_exact(&mut frame).await.is_err() {
            return;
        }
        let opcode = frame[0] & 0x0f;
        let masked = frame[1] & 0x80 != 0;
        let length = match frame[1] & 0x7f {
            126 => {
                let mut extended = [0u8; 2];
                if server_read.read_exact(&mut extended).await.is_err() {
                    return;
                }
                frame.extend_from_slice(&extended);
                u64::from(u16::from_be_bytes(extended))
            }
            127 => {
                let mut extended = [0u8; 8];
                if server_read.read_exact(&mut extended).await.is_err() {
                    return;
                }
                frame.extend_from_slice(&extended);
                u64::from_be_bytes(extended)
            }
            short => u64::from(short),
        };
        if masked {
            let mut mask = [0u8; 4];
            if server_read.read_exact(&mut mask).await.is_err() {
                return;
            }
            frame.extend_from_slice(&mask);
        }
        let mut payload = vec![0u8; usize::try_from(length).expect("a frame that fits")];
        if server_read.read_exact(&mut payload).await.is_err() {
            return;
        }
        let lost = opcode == 1 && String::from_utf8_lossy(&payload).contains(marker);
        if lost {
            continue;
        }
        frame.extend_from_slice(&payload);
        if client_write.write_all(&frame).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_demo_fails_and_names_the_event_that_did_not_arrive() {
    let env = Env::start().await;
    let gateway = lossy_gateway(env.stack.stack.gateway, r#""type":"payment.failed""#).await;
    let mut command = env.micro(&["demo", "--format", "json", "--timeout", "5"]);
    command.env("MICRO_GATEWAY", &gateway);
    let output = run(command, None).await;
    assert_eq!(output.code, i32::from(micro::exit::INCOMPLETE), "{output:#?}");
    let report = report(&output.stdout);
    assert_eq!(report["passed"], false);
    let failed_payment = report["triggered"]
        .as_array()
        .expect("triggered")
        .iter()
        .find(|t| t["payment"]["status"] == "failed")
        .and_then(|t| t["payment"]["id"].as_str())
        .expect("the declined payment");
    assert_eq!(
        report["problems"],
        serde_json::json!([format!("payment.failed of {failed_payment} did not arrive")]),
        "{report:#}"
    );
    let rows = report["events"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 9);
    let arrived = rows
        .iter()
        .filter(|r| r["arrivals"] == 1 && r["verified"] == true)
        .count();
    assert_eq!(arrived, 8, "{rows:#?}");
    // Cleaned up all the same, and the ledger is not what failed.
    assert_eq!(report["api_key_revoked"], true);
    assert_eq!(report["ledger"]["matched"], true);
    // What a person reads says the same.
    assert!(
        output
            .stderr
            .lines()
            .any(|line| line.contains("payment.failed") && line.contains("missing")),
        "{}",
        output.stderr
    );
}
