//! `tokengate status --admin ADDR`: the admin view of a running server (`GET /debug/tenants` on
//! its `metrics_listen` address) as a table, one line per tenant: whether it has keys, how
//! many, from where, until when they serve, and the last error.

use std::process::ExitCode;

use serde_json::Value;

use super::runtime;

/// Prints the tenants of the server whose admin listener is at `admin`; exit 1 when it cannot
/// be read or a tenant has no keys.
pub(super) fn status(admin: &str) -> ExitCode {
    let url = tenants_url(admin);
    let view = match runtime()
        .map_err(|error| error.to_string())
        .and_then(|runtime| runtime.block_on(fetch(&url)))
    {
        Ok(view) => view,
        Err(message) => {
            eprintln!("error: {url}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let tenants = view["tenants"].as_array().map_or(&[][..], Vec::as_slice);
    print!("{}", table(tenants));
    if tenants.iter().all(|tenant| tenant["has_keys"] == true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `/debug/tenants` of an address (`127.0.0.1:9090`) or a URL (`http://host:9090`).
fn tenants_url(admin: &str) -> String {
    let base = if admin.contains("://") {
        admin.trim_end_matches('/').to_owned()
    } else {
        format!("http://{admin}")
    };
    format!("{base}/debug/tenants")
}

async fn fetch(url: &str) -> Result<Value, String> {
    // Installing twice is harmless; reqwest needs a provider before it builds a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(url).await.map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP status {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|error| format!("not the admin view: {error}"))
}

/// The tenants as aligned columns.
fn table(tenants: &[Value]) -> String {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let mut rows = vec![
        [
            "TENANT",
            "KEYS",
            "SOURCE",
            "LOADED",
            "STALE AT",
            "VALID",
            "REJECTED",
            "LAST ERROR",
        ]
        .map(str::to_owned),
    ];
    for tenant in tenants {
        let keys = if tenant["has_keys"] == true {
            tenant["keys"].as_array().map_or(0, Vec::len).to_string()
        } else {
            "none".to_owned()
        };
        let source = match tenant["key_source"]["url"].as_str() {
            Some(url) => url.to_owned(),
            None => text(&tenant["key_source"]["kind"]),
        };
        let error = match tenant["last_error"]["error"].as_str() {
            Some(error) => format!("{} (since {})", error, text(&tenant["last_error"]["since"])),
            None => "-".to_owned(),
        };
        rows.push([
            text(&tenant["id"]),
            keys,
            source,
            text(&tenant["keys_loaded_at"]),
            text(&tenant["keys_stale_at"]),
            tenant["validations"]["valid"].to_string(),
            tenant["validations"]["rejected"].to_string(),
            error,
        ]);
    }
    let mut widths = [0; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
