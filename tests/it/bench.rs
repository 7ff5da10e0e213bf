//! `tokengate bench` against the real server, in every mode: it runs, checks every answer, and
//! says so in its exit code. Nothing here judges speed (that is what the tool is for).

use crate::support;

use std::process::Command;

use serde_json::{Value, json};
use support::{TestKey, Tokengate, binary, claims, jwks, now};

const AUDIENCE: &str = "api://bench";
const ISSUER: &str = "https://issuer.example";

fn config(key: &TestKey) -> String {
    format!(
        "ext_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\ntenants:\n  - id: bench\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks: {}\n",
        jwks(&[key])
    )
}

/// A tokens file: two valid tokens, an expired one and a forged one, with their verdicts.
fn tokens_file(dir: &tempfile::TempDir, key: &TestKey, label_of_expired: &str) -> String {
    let valid = key.sign(&claims(ISSUER, AUDIENCE, now()));
    let mut other = claims(ISSUER, AUDIENCE, now());
    other["sub"] = json!("user-2");
    let expired = key.sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600}));
    // The forged token names the real key's kid but is signed by another key.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let forged = TestKey::rsa_b().sign_with(header, &claims(ISSUER, AUDIENCE, now()));
    let text = format!(
        "# bench test\n{valid}\nvalid {}\n{label_of_expired} {expired}\ninvalid_signature {forged}\n",
        key.sign(&other)
    );
    let path = dir.path().join("tokens.txt");
    std::fs::write(&path, text).expect("write tokens");
    path.to_string_lossy().into_owned()
}

async fn bench(args: Vec<String>) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .arg("bench")
            .args(args)
            .output()
            .expect("run bench")
    })
    .await
    .expect("join");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn common(addr: &str, mode: &str, tokens: &str) -> Vec<String> {
    [
        "--addr",
        addr,
        "--mode",
        mode,
        "--tokens",
        tokens,
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--batch",
        "7",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--json",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}

#[tokio::test]
async fn every_mode_runs_and_checks_every_answer() {
    let key = TestKey::rsa_a();
    let server = Tokengate::start(&config(&key));
    let forward_auth = server.logged_address("forward-auth listening");
    server.wait_serving().await;
    let dir = tempfile::tempdir().expect("dir");
    let tokens = tokens_file(&dir, &key, "expired");
    let grpc = server.endpoint();
    let pid = server.pid().to_string();
    for (mode, addr) in [
        ("unary", grpc.clone()),
        ("batch", grpc.clone()),
        ("stream", grpc.clone()),
        ("check", grpc.clone()),
        ("forward-auth", format!("http://{forward_auth}")),
    ] {
        let mut args = common(&addr, mode, &tokens);
        args.extend(["--server-pid".to_owned(), pid.clone()]);
        let (code, stdout, stderr) = bench(args).await;
        assert_eq!(code, Some(0), "{mode}: {stdout}{stderr}");
        let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
        let measured = &report["measured"];
        assert!(
            measured["validations"].as_u64() > Some(0),
            "{mode}: {report}"
        );
        assert_eq!(measured["wrong"], 0, "{mode}: {report}");
        assert_eq!(measured["failed"], 0, "{mode}: {report}");
        assert!(
            measured["server_cpu_us"].as_f64().is_some(),
            "{mode}: {report}"
        );
        assert!(
            report["ratio_to_ceiling"].as_f64().is_some(),
            "{mode}: {report}"
        );
        assert!(
            report["ceiling"]["validations"].as_u64() > Some(0),
            "{mode}: {report}"
        );
        if mode == "batch" {
            assert_eq!(report["batch"], 7);
            let validations = measured["validations"].as_f64().unwrap_or_default();
            let calls = measured["calls_per_second"].as_f64().unwrap_or_default()
                / measured["validations_per_second"].as_f64().unwrap_or(1.0);
            assert!((calls * 7.0 - 1.0).abs() < 1e-6, "{validations} {report}");
        }
    }
}

#[tokio::test]
async fn a_wrong_verdict_fails_the_run() {
    let key = TestKey::rsa_a();
    let server = Tokengate::start(&config(&key));
    server.wait_serving().await;
    let dir = tempfile::tempdir().expect("dir");
    // The expired token is labelled valid: every answer for it is "wrong".
    let tokens = tokens_file(&dir, &key, "valid");
    for mode in ["unary", "stream"] {
        let (code, stdout, _) = bench(common(&server.endpoint(), mode, &tokens)).await;
        assert_eq!(code, Some(1), "{mode}: {stdout}");
        let report: Value = serde_json::from_str(&stdout).expect("JSON");
        assert!(report["measured"]["wrong"].as_u64() > Some(0), "{report}");
        let problem = report["measured"]["first_problem"].as_str().unwrap_or("");
        assert!(problem.contains("expected valid"), "{problem}");
    }
}

#[tokio::test]
async fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tokens.txt");
    std::fs::write(&path, "expird a.b.c\n").expect("write");
    let tokens = path.to_string_lossy().into_owned();
    let (code, _, stderr) = bench(common("http://127.0.0.1:9", "unary", &tokens)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("tokens.txt:1:"), "{stderr}");
    let (code, _, stderr) = bench(vec!["--mode".into(), "sideways".into()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    // A server that is not there is a runtime failure, not a usage error.
    std::fs::write(&path, "a.b.c\n").expect("write");
    let (code, _, stderr) = bench(common("http://127.0.0.1:9", "unary", &tokens)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// The shed calls of a server over `max_in_flight` are counted apart from failures: they fail
/// the run, unless `--allow-shed` says they are expected.
#[tokio::test]
async fn shed_calls_are_counted_apart_and_fail_the_run_unless_allowed() {
    let key = TestKey::rsa_a();
    let server = Tokengate::start(&format!(
        "metrics_listen: \"127.0.0.1:0\"\nlimits: {{ max_in_flight: 1 }}\n{}",
        config(&key)
    ));
    server.wait_serving().await;
    let dir = tempfile::tempdir().expect("dir");
    let tokens = tokens_file(&dir, &key, "expired");
    let valid = key.sign(&claims(ISSUER, AUDIENCE, now()));
    for allowed in [false, true] {
        // An open stream holds the one place until it closes: calls meanwhile are shed.
        let mut streaming = server.client().await;
        let ((sender, mut answers), first) = support::open_stream(&mut streaming, &valid).await;
        assert!(first.valid, "{first:?}");
        let shed_before = shed_total(&server.scrape().await);
        let mut args = common(&server.endpoint(), "unary", &tokens);
        if let Some(duration) = args.iter().position(|arg| arg == "300ms") {
            args[duration] = "3s".to_owned();
        }
        args.push("--no-ceiling".to_owned());
        if allowed {
            args.push("--allow-shed".to_owned());
        }
        let run = tokio::spawn(bench(args));
        // Once calls are being shed, the stream closes and frees the place.
        let mut shedding = false;
        for _ in 0..100 {
            if shed_total(&server.scrape().await) > shed_before {
                shedding = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(shedding, "no call was shed while the stream held the place");
        drop(sender);
        assert!(answers.message().await.expect("end").is_none());
        let (code, stdout, stderr) = run.await.expect("join");
        let report: Value = serde_json::from_str(&stdout).expect("JSON");
        let measured = &report["measured"];
        assert!(measured["shed"].as_u64() > Some(0), "{report}");
        assert_eq!(measured["failed"], 0, "{report}");
        assert_eq!(measured["wrong"], 0, "{report}");
        assert!(measured["validations"].as_u64() > Some(0), "{report}");
        assert!(
            measured["first_failure_unix_ms"].as_i64() > Some(0),
            "{report}"
        );
        assert_eq!(code, Some(if allowed { 0 } else { 1 }), "{stdout}{stderr}");
    }
}

/// `tokengate_shed_total`, summed over its reasons.
fn shed_total(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with("tokengate_shed_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
