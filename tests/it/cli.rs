//! The command line as a user runs it: exit codes, messages, and the embedded default.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Value, json};
use support::{TestKey, Tokengate, binary, claims, jwks, now, request};
use tokengate::pb;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &tempfile::TempDir, yaml: &str) -> String {
    let path = dir.path().join("tokengate.yaml");
    std::fs::write(&path, yaml).expect("write");
    path.to_string_lossy().into_owned()
}

fn inline_config(key: &TestKey) -> String {
    format!(
        "tenants:\n  - id: local\n    issuers: [\"https://issuer.example\"]\n    audiences: [\"api://x\"]\n    jwks: {}\n",
        jwks(&[key])
    )
}

#[test]
fn check_config_prints_a_summary() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(&dir, &inline_config(&TestKey::es256()));
    let output = run(&["check-config", &path], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("- local: 1 static key(s)"), "{stdout}");
    assert!(stdout.contains("ES256"), "{stdout}");
}

#[test]
fn check_config_warns_about_a_tenant_without_audiences() {
    let dir = tempfile::tempdir().expect("dir");
    let open = inline_config(&TestKey::es256()).replace("    audiences: [\"api://x\"]\n", "");
    let path = write_config(&dir, &open);
    let output = run(&["check-config", &path], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("warning: no audiences"), "{stdout}");
    let path = write_config(&dir, &inline_config(&TestKey::es256()));
    let stdout = text(&run(&["check-config", &path], None).stdout);
    assert!(!stdout.contains("warning: no audiences"), "{stdout}");
}

#[test]
fn the_deploy_example_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/tokengate.example.yaml");
    let output = run(&["check-config", path], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for tenant in ["contoso-ciam", "contoso-workforce", "partner"] {
        assert!(stdout.contains(&format!("- {tenant}:")), "{stdout}");
    }
}

#[test]
fn check_config_reports_every_error_with_file_line_and_path() {
    let dir = tempfile::tempdir().expect("dir");
    let yaml = r#"listen: "not an address"
tenants:
  - id: a
    discovery_url: "http://idp.example/.well-known/openid-configuration"
    clock_skew: "soon"
  - id: a
    issuers: ["https://i"]
    jwks_uri: "https://i/jwks"
    algorithms: [RS256, none]
  - id: c
    issuers: ["https://c"]
    max_lifetime: 500ms
"#;
    let path = write_config(&dir, yaml);
    let output = run(&["check-config", &path], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    for expected in [
        format!("{path}:1: listen:"),
        format!("{path}:4: tenants[0].discovery_url: plain http://"),
        format!("{path}:5: tenants[0].clock_skew:"),
        format!("{path}:6: tenants[1].id: duplicate tenant id"),
        format!("{path}:9: tenants[1].algorithms[1]: \"none\" is not supported"),
        format!("{path}:10: tenants[2]: exactly one key source"),
        format!("{path}:12: tenants[2].max_lifetime: \"500ms\" is not a whole number of seconds"),
        "7 errors in the configuration".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn check_config_rejects_unknown_fields_and_bad_yaml_with_a_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(
        &dir,
        "tenants:\n  - id: a\n    issuers: [\"https://i\"]\n    jwks_uri: \"https://i/jwks\"\n    audience: [\"typo\"]\n",
    );
    let output = run(&["check-config", &path], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{path}:5: tenants[0].audience: unknown field `audience`"
        )),
        "{stderr}"
    );

    let path = write_config(&dir, "tenants: [\n");
    let output = run(&["check-config", &path], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains(&path),
        "{}",
        text(&output.stderr)
    );

    let output = run(&["check-config", "/no/such/file.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read the file"));
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["serve", "--listen", "nowhere"],
        &["mint", "--ttl", "forever"],
        &[],
    ] {
        let output = run(args, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn validate_prints_json_verdicts_and_exits_by_validity() {
    let dir = tempfile::tempdir().expect("dir");
    let key = TestKey::rsa_a();
    let path = write_config(&dir, &inline_config(&key));
    let good = key.sign(&claims("https://issuer.example", "api://x", now()));
    let output = run(&["validate", "--config", &path, &good], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["tenant"], "local");
    assert_eq!(verdict["claims"]["sub"], "user-1");

    let bad_audience = key.sign(&claims("https://issuer.example", "api://y", now()));
    let output = run(&["validate", "--config", &path, &bad_audience], None);
    assert_eq!(output.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(verdict["reason"], "invalid_audience");
    assert!(verdict.get("claims").is_none());

    // One token per line on stdin, one verdict per line on stdout.
    let input = format!("{good}\n\nnot-a-token\n{good}\n");
    let output = run(&["validate", "--config", &path, "-"], Some(&input));
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    let valid: Vec<bool> = lines.iter().map(|line| line["valid"] == true).collect();
    assert_eq!(valid, [true, false, true]);
    assert_eq!(lines[1]["reason"], "malformed");

    // --now replays a verdict at another time.
    let output = run(
        &[
            "validate",
            "--config",
            &path,
            "--now",
            &(now() + 7200).to_string(),
            &good,
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("\"expired\""));
}

#[test]
fn the_printed_demo_configuration_is_the_one_that_validates_minted_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let printed = run(&["demo-config"], None);
    assert_eq!(printed.status.code(), Some(0));
    let path = write_config(&dir, &text(&printed.stdout));
    let token = run(&["mint"], None);
    let output = run(
        &["validate", "--config", &path, text(&token.stdout).trim()],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
}

#[test]
fn mint_and_validate_agree_on_the_embedded_default() {
    let token = run(&["mint"], None);
    assert_eq!(token.status.code(), Some(0));
    let output = run(&["validate"], Some(&text(&token.stdout)));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));

    let expired = run(&["mint", "--expired"], None);
    let output = run(&["validate", text(&expired.stdout).trim()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("\"expired\""));

    let wrong_scope = run(
        &["mint", "--scope", "write", "--claim", "tier=\"gold\""],
        None,
    );
    let output = run(&["validate", text(&wrong_scope.stdout).trim()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("claim_mismatch"));
}

#[tokio::test]
async fn serve_without_config_runs_the_demo_and_prints_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let server = Tokengate::attach(child, dir);
    let mut tokens = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let line = line.trim().to_owned();
        if line.starts_with("eyJ") {
            tokens.push(line);
        }
        if tokens.len() == 2 || Instant::now() > deadline {
            break;
        }
    }
    assert_eq!(
        tokens.len(),
        2,
        "the banner shows a valid and an expired token"
    );
    server.wait_serving().await;
    let mut client = server.client().await;
    let valid = client
        .validate_token(request(&tokens[0], ""))
        .await
        .expect("rpc")
        .into_inner();
    assert!(valid.valid, "{valid:?}");
    assert_eq!(valid.tenant, "demo");
    let expired = client
        .validate_token(request(&tokens[1], ""))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(expired.reason, pb::Reason::Expired as i32);
    let _ = json!(null);
}

/// The README's "Trying it" block, run as written against a real server: the commands name
/// `./target/release/tokengate` and `127.0.0.1:50051`, which the test points at its own binary
/// and server.
#[tokio::test]
async fn the_readme_trying_it_commands_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("## Trying it")
        .nth(1)
        .expect("a Trying it section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    let server =
        Tokengate::start(&String::from_utf8(run(&["demo-config"], None).stdout).expect("utf-8"));
    server.wait_serving().await;
    let script = block
        .replace("./target/release/tokengate", binary())
        .replace("127.0.0.1:50051", &server.address.to_string());
    let output = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON verdict per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{}", text(&output.stderr));
    assert_eq!(lines[0]["valid"], true, "{}", lines[0]);
    assert_eq!(lines[0]["claims"]["sub"], "demo-user", "{}", lines[0]);
    assert_eq!(lines[1]["reason"], "expired", "{}", lines[1]);
    // The README shows what the last one prints.
    let shown = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the printed verdict");
    let mut shown: Value = serde_json::from_str(shown.trim()).expect("JSON");
    let mut printed = lines[2].clone();
    shown["expires_at"] = Value::Null;
    printed["expires_at"] = Value::Null;
    assert_eq!(printed, shown);
}

#[tokio::test]
async fn validate_asks_a_running_server_with_addr() {
    let key = TestKey::rsa_a();
    let server = Tokengate::start(&inline_config(&key));
    server.wait_serving().await;
    let address = format!("http://{}", server.address);
    let good = key.sign(&claims("https://issuer.example", "api://x", now()));
    let expired = key.sign(&claims("https://issuer.example", "api://x", now() - 7200));
    let output = run(
        &["validate", "--addr", &address, "-"],
        Some(&format!("{good}\n{expired}\n")),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["tenant"], "local");
    assert_eq!(lines[0]["claims"]["sub"], "user-1");
    assert_eq!(lines[1]["reason"], "expired");
    assert_eq!(
        run(&["validate", "--addr", &address, &good], None)
            .status
            .code(),
        Some(0)
    );
    // --addr judges on the server: offline-only flags are usage errors.
    assert_eq!(
        run(&["validate", "--addr", &address, "--now", "5", &good], None)
            .status
            .code(),
        Some(2)
    );
    let unreachable = run(&["validate", "--addr", "http://127.0.0.1:9", &good], None);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr).contains("cannot connect"),
        "{}",
        text(&unreachable.stderr)
    );
}

/// Every path the README's repository layout names in its first column exists.
#[test]
fn the_readme_layout_table_matches_the_tree() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README");
    let table = readme
        .split("## Repository layout")
        .nth(1)
        .expect("a layout section");
    let mut named = 0;
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let first = row.split(" | ").next().unwrap_or_default();
        for path in first.split('`').skip(1).step_by(2) {
            named += 1;
            assert!(
                std::path::Path::new(root).join(path).exists(),
                "the README names {path}, which does not exist"
            );
        }
    }
    assert!(named > 20, "only {named} paths found in the layout table");
}
