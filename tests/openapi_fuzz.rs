//! Every operation of the OpenAPI document, fuzzed by schemathesis (from
//! PyPI, in the virtualenv `make test` makes) against a real `stratbox
//! serve` with bots running: no answer may be a 5xx, and the server must
//! still be up at the end.

use std::time::Duration;

use stratbox_tests::server::{ADMIN_TOKEN, Client, Options, Server, bot_yaml};

#[tokio::test]
async fn schemathesis_finds_no_server_error() {
    let st = std::env::var("STRATBOX_SCHEMATHESIS")
        .expect("STRATBOX_SCHEMATHESIS names schemathesis' `st` (`make test` sets it)");
    let defaults = Options::default().settings;
    let server = Server::start(Options {
        // The fuzzer sends made-up tokens on purpose: let it go on.
        settings: format!("{defaults}limits: {{ failed_auth_per_minute: 0 }}\n"),
        bots: vec![
            ("a.yaml".into(), bot_yaml("fuzz-a", true)),
            ("b.yaml".into(), bot_yaml("fuzz-b", false)),
        ],
        ..Options::default()
    });
    let report = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(st)
        .args(["run", &server.url("/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--checks", "not_a_server_error"])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--request-timeout",
            "10",
        ])
        // Streams never end: their handshakes are tested elsewhere.
        .args([
            "--exclude-path",
            "/api/v1/ws",
            "--exclude-path",
            "/api/v1/events",
        ])
        .args(["--no-color", "--report-dir"])
        .arg(report.path())
        .current_dir(report.path())
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    // Still up, still answering.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = Client::admin().get(&server.url("/health")).await;
    assert_eq!(status, 200);
}
