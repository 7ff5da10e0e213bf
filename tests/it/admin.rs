//! The admin view (`/debug/tenants`) of the real binary: what each tenant loaded and what went
//! wrong, in one place, also as `tokengate status`; `admin: false` turns it off, also by a reload.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::{Idp, TestKey, jwks};

/// GETs `path` on the admin listener: the status and the body as JSON (`Null` if not JSON).
async fn get(admin: &str, path: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{admin}{path}"))
        .await
        .expect("the admin listener answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_view_shows_what_each_tenant_loaded_and_what_failed() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = |admin: &str| {
        format!(
            "metrics_listen: \"127.0.0.1:0\"\nrefresh: {{ startup_grace: 1s }}\n{admin}tenants:\n  - id: static\n    issuers: [\"https://static.example\"]\n    audiences: any\n    jwks: {}\n  - id: remote\n    discovery_url: \"{}\"\n    audiences: [api]\n  - id: down\n    issuers: [\"https://down.example\"]\n    audiences: [api]\n    jwks_uri: \"http://127.0.0.1:9/keys\"\n",
            jwks(&[&key]),
            idp.discovery_url()
        )
    };
    let server = support::Tokengate::start(&config(""));
    let admin = server.logged_address("metrics and probes listening");
    server.wait_serving().await;
    let mut view = Value::Null;
    for _ in 0..100 {
        view = get(&admin, "/debug/tenants").await.1;
        let down = &view["tenants"][2];
        if view["tenants"][1]["has_keys"] == true && down["last_error"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tenants = view["tenants"].as_array().expect("tenants");
    let ids: Vec<&str> = tenants.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["static", "remote", "down"], "{view}");

    let fixed = &tenants[0];
    assert_eq!(fixed["key_source"]["kind"], "static");
    assert_eq!(fixed["any_audience"], true);
    assert_eq!(fixed["keys"][0]["kid"], key.kid.as_str(), "{fixed}");
    assert_eq!(fixed["keys"][0]["key_type"], "RSA");
    assert_eq!(fixed["keys"][0]["algorithms"][0], "RS256");
    let text = view.to_string();
    assert!(!text.contains("\"n\""), "no key material: {text}");

    let remote = &tenants[1];
    assert_eq!(remote["key_source"]["kind"], "discovery");
    assert_eq!(
        remote["discovered_issuer"],
        idp.issuer().as_str(),
        "{remote}"
    );
    assert_eq!(remote["accepted_issuers"][0], idp.issuer().as_str());
    assert!(remote["keys_loaded_at"].is_string(), "{remote}");
    assert!(remote["keys_stale_at"].is_string(), "{remote}");
    assert!(remote["next_refresh_at"].is_string(), "{remote}");
    assert!(remote["last_error"].is_null(), "{remote}");

    let down = &tenants[2];
    assert_eq!(down["has_keys"], false, "{down}");
    let error = down["last_error"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1:9"), "{down}");
    assert!(down["last_error"]["since"].is_string(), "{down}");

    let (status, one) = get(&admin, "/debug/tenants/remote").await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], "remote");
    assert_eq!(get(&admin, "/debug/tenants/nobody").await.0, 404);

    // `tokengate status` prints the same view as a table; a tenant without keys fails it.
    let output = std::process::Command::new(support::binary())
        .args(["status", "--admin", &admin])
        .output()
        .expect("run status");
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TENANT") && lines[0].contains("LAST ERROR"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("static ") && lines[1].contains(" 1 "),
        "{table}"
    );
    assert!(
        lines[2].starts_with("remote ") && lines[2].contains(&idp.discovery_url()),
        "{table}"
    );
    assert!(
        lines[3].starts_with("down ")
            && lines[3].contains("none")
            && lines[3].contains("127.0.0.1:9"),
        "{table}"
    );

    // A reload with `admin: false` turns the view off.
    std::fs::write(server.config_path(), config("admin: false\n")).expect("rewrite");
    server.signal("HUP");
    let mut status = 200;
    for _ in 0..100 {
        status = get(&admin, "/debug/tenants").await.0;
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 404, "the admin view is still on");
    assert_eq!(get(&admin, "/debug/tenants/static").await.0, 404);
    let output = std::process::Command::new(support::binary())
        .args(["status", "--admin", &format!("http://{admin}/")])
        .output()
        .expect("run status");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("admin: false"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
