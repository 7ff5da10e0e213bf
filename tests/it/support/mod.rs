//! Test harness: fixture keys, an independent token encoder (`jsonwebtoken`), a real loopback
//! identity provider (OIDC discovery + JWKS over HTTP), and the real `tokengate` binary.
#![allow(dead_code, unreachable_pub)]
// The tests drive real processes and sockets, so they wait in real time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

pub const NOW: i64 = 1_800_000_000;

/// Seconds since the epoch, now (for tests against the running binary).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A private key from `tests/data`, its jsonwebtoken algorithm, and its kid.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
}

/// jsonwebtoken is built with both of its crypto backends (the benchmarks compare them), so each
/// process picks one: the RustCrypto one, for test tokens.
pub fn install_jwt_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

impl TestKey {
    pub fn load(file: &str, alg: Algorithm, kid: &str) -> Self {
        install_jwt_provider();
        let pem = std::fs::read(data(file)).expect("fixture key");
        let encoding = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => panic!("use TestKey::hmac"),
        }
        .expect("parse fixture key");
        Self {
            kid: kid.into(),
            alg,
            encoding,
        }
    }

    pub fn hmac(secret: &[u8], alg: Algorithm, kid: &str) -> Self {
        install_jwt_provider();
        Self {
            kid: kid.into(),
            alg,
            encoding: EncodingKey::from_secret(secret).expect("secret"),
        }
    }

    pub fn rsa_a() -> Self {
        Self::load("rsa2048-a.pem", Algorithm::RS256, "rsa-a")
    }
    pub fn rsa_b() -> Self {
        Self::load("rsa2048-b.pem", Algorithm::RS256, "rsa-b")
    }
    pub fn es256() -> Self {
        Self::load("ec-p256.pem", Algorithm::ES256, "ec-256")
    }
    pub fn es384() -> Self {
        Self::load("ec-p384.pem", Algorithm::ES384, "ec-384")
    }
    pub fn ed25519() -> Self {
        Self::load("ed25519.pem", Algorithm::EdDSA, "ed-1")
    }

    /// The same key used with another algorithm of its family (e.g. PS256 with an RSA key).
    pub fn with_alg(&self, alg: Algorithm) -> Self {
        Self {
            alg,
            ..self.clone()
        }
    }

    /// The public JWK, derived by jsonwebtoken (not by tokengate), with kid, use and alg.
    pub fn jwk(&self) -> Value {
        let jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("jwk");
        let mut value = serde_json::to_value(jwk).expect("jwk json");
        let object = value.as_object_mut().expect("object");
        object.insert("kid".into(), json!(self.kid));
        object.insert("use".into(), json!("sig"));
        value
    }

    /// Signs `claims` with jsonwebtoken's encoder.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    /// Signs a header and payload given as exact JSON text (for inputs a JSON value cannot
    /// hold, such as `1e400`), with jsonwebtoken's signer.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header), b64.encode(payload));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).expect("sign");
        format!("{input}.{signature}")
    }
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// Standard claims for a token issued at `now`, valid for an hour.
pub fn claims(issuer: &str, audience: &str, now: i64) -> Value {
    json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scp": "read write",
    })
}

// === identity provider ===

/// What the loopback identity provider serves; tests change it while it runs.
pub struct IdpState {
    pub issuer: Mutex<String>,
    pub jwks: Mutex<Value>,
    pub down: AtomicBool,
    /// Serve `{"keys": [` (invalid JSON) instead of the key set.
    pub bad_json: AtomicBool,
    /// Delay before answering the JWKS request.
    pub delay: Mutex<Duration>,
    /// The JWKS response's Cache-Control header, if any.
    pub cache_control: Mutex<Option<String>>,
    pub discovery_requests: AtomicUsize,
    pub jwks_requests: AtomicUsize,
    pub base: Mutex<String>,
}

/// A real HTTP identity provider on 127.0.0.1 serving OIDC discovery and a JWKS.
pub struct Idp {
    pub address: SocketAddr,
    pub state: Arc<IdpState>,
    task: tokio::task::JoinHandle<()>,
}

fn idp_app(state: Arc<IdpState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(keys))
        .with_state(state)
}

impl Idp {
    /// Starts the provider; `issuer` None means "http://{address}" (the usual OIDC shape).
    pub async fn start(jwks: Value, issuer: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind idp");
        let address = listener.local_addr().expect("addr");
        let base = format!("http://{address}");
        let state = Arc::new(IdpState {
            issuer: Mutex::new(issuer.map_or_else(|| base.clone(), str::to_owned)),
            jwks: Mutex::new(jwks),
            down: AtomicBool::new(false),
            bad_json: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
            cache_control: Mutex::new(None),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            base: Mutex::new(base),
        });
        let app = idp_app(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            state,
            task,
        }
    }

    /// Stops listening: connections are refused until [`Idp::restart`].
    pub async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .expect("rebind idp");
        let app = idp_app(self.state.clone());
        self.task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    pub fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().expect("lock") = jwks;
    }

    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// Discovery and JWKS requests together.
    pub fn requests(&self) -> usize {
        self.jwks_requests() + self.state.discovery_requests.load(Ordering::SeqCst)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base())
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base())
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.lock().expect("lock").clone()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let base = state.base.lock().expect("lock").clone();
    let issuer = state.issuer.lock().expect("lock").clone();
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn keys(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if state.bad_json.load(Ordering::SeqCst) {
        return "{\"keys\": [".into_response();
    }
    let jwks = state.jwks.lock().expect("lock").clone();
    let cache_control = state.cache_control.lock().expect("lock").clone();
    let mut response = axum::Json(jwks).into_response();
    if let Some(value) = cache_control
        && let Ok(value) = axum::http::HeaderValue::from_str(&value)
    {
        response
            .headers_mut()
            .insert(axum::http::header::CACHE_CONTROL, value);
    }
    response
}

// === the tokengate binary ===

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tokengate")
}

/// A running `tokengate serve`, killed when dropped.
pub struct Tokengate {
    pub address: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Tokengate {
    /// Writes `config` (YAML) to a temp file and serves it on a free loopback port.
    pub fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, config)
    }

    /// The configuration file of this server (rewrite it to trigger a reload).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("tokengate.yaml")
    }

    /// Like [`Tokengate::start`], in a given directory (for configurations with key files).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Self {
        let path = dir.path().join("tokengate.yaml");
        std::fs::write(&path, config).expect("write config");
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tokengate");
        Self::attach(child, dir)
    }

    /// Follows the log of a spawned server until it says where it listens.
    pub fn attach(mut child: Child, dir: tempfile::TempDir) -> Self {
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["message"] == "tokengate listening"
                    && let Some(address) = entry["address"].as_str()
                {
                    let _ = sender.send(address.to_owned());
                }
                log_writer.lock().expect("lock").push(line);
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("tokengate did not start: {:?}", log.lock().expect("lock")));
        Self {
            address: address.parse().expect("address"),
            log,
            child,
            _dir: dir,
        }
    }

    /// Waits for a JSON log entry with this message and returns it.
    pub fn wait_log(&self, message: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .log
                .lock()
                .expect("lock")
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|entry| entry["message"] == message);
            if let Some(entry) = found {
                return entry;
            }
            assert!(Instant::now() < deadline, "no log entry {message:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address a "... listening" log entry names (e.g. "forward-auth listening").
    pub fn logged_address(&self, message: &str) -> String {
        self.wait_log(message)["address"]
            .as_str()
            .expect("the entry names an address")
            .to_owned()
    }

    /// The Prometheus text of the server's `/metrics` (its configuration sets `metrics_listen`).
    pub async fn scrape(&self) -> String {
        let address = self.logged_address("metrics and probes listening");
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::get(format!("http://{address}/metrics"))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("the metrics text")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.address)
    }

    pub async fn client(&self) -> Client {
        client(self.address).await
    }

    /// Waits until gRPC health reports SERVING for the whole server.
    pub async fn wait_serving(&self) {
        wait_serving(self.address).await;
    }

    /// Sends a signal (e.g. "HUP") to the server.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// How many log entries carry this message.
    pub fn count_log(&self, message: &str) -> usize {
        self.log
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == message)
            .count()
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tokengate did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tokengate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `TokenValidator` client.
pub type Client =
    tokengate::pb::token_validator_client::TokenValidatorClient<tonic::transport::Channel>;

/// The gRPC endpoint URL of a server at `address`.
pub fn endpoint(address: SocketAddr) -> String {
    format!("http://{address}")
}

/// A client of the server at `address`.
pub async fn client(address: SocketAddr) -> Client {
    Client::connect(endpoint(address)).await.expect("connect")
}

/// Waits until gRPC health at `address` reports SERVING for the whole server.
pub async fn wait_serving(address: SocketAddr) {
    let channel = tonic::transport::Channel::from_shared(endpoint(address))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect health");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|response| response.into_inner().status)
            .ok();
        if status == Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tokengate never became SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// tokengate served inside the test process (`tokengate::serve` on a loopback listener, on the
/// test's runtime), shut down when dropped. For tests that need no logs, signals or exit codes.
/// Its admin listener serves the admin view; its `/metrics` are shared by every in-process
/// server (the recorder is process-wide), so metric tests use [`Tokengate`].
pub struct InProcess {
    pub address: SocketAddr,
    /// The admin listener (`/debug/tenants`, `/readyz`).
    pub admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// The configuration file of this server (rewrite it to trigger a reload).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("tokengate.yaml")
    }

    /// Writes `config` (YAML) to a temp file and serves it on a free loopback port.
    pub async fn start(config: &str) -> Self {
        Self::start_with_files(config, &[]).await
    }

    /// Like [`InProcess::start`], with more files (name, content) beside the configuration.
    pub async fn start_with_files(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).expect("write a file");
        }
        let path = dir.path().join("tokengate.yaml");
        std::fs::write(&path, config).expect("write config");
        let mut config = tokengate::Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
        let admin = free_port();
        let overrides = tokengate::Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            metrics_listen: Some(admin),
        };
        overrides.apply(&mut config);
        let listener = tokengate::bind(&config).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::spawn(async move {
            if let Err(error) =
                tokengate::serve(config, Some(path), overrides, listener, shutdown).await
            {
                panic!("the in-process server failed: {error}");
            }
        });
        Self {
            address,
            admin,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// The admin view of one tenant (`GET /debug/tenants/{id}`).
    pub async fn debug_tenant(&self, id: &str) -> Value {
        let url = format!("http://{}/debug/tenants/{id}", self.admin);
        for _ in 0..100 {
            if let Ok(response) = reqwest::get(&url).await {
                let body = response.bytes().await.expect("the admin view's body");
                return serde_json::from_slice(&body).expect("the admin view is JSON");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the admin view at {url} does not answer");
    }

    /// The last key-load error of a tenant, as the admin view shows it ("" when none).
    pub async fn last_error(&self, id: &str) -> String {
        let view = self.debug_tenant(id).await;
        view["last_error"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.address)
    }

    pub async fn client(&self) -> Client {
        client(self.address).await
    }

    /// Waits until gRPC health reports SERVING for the whole server.
    pub async fn wait_serving(&self) {
        wait_serving(self.address).await;
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Writes `yaml` to a configuration file in `dir`, runs `tokengate check-config` on it, expects
/// the configuration to be refused (exit 2), and checks that the errors name each of `expected`
/// (such as `":3: limits.request_timeout: must be"`).
pub fn assert_config_refused(dir: &Path, yaml: &str, expected: &[&str]) {
    let path = dir.join("tokengate.yaml");
    std::fs::write(&path, yaml).expect("write the configuration");
    let output = Command::new(binary())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for words in expected {
        assert!(stderr.contains(words), "missing {words:?} in:\n{stderr}");
    }
}

/// A loopback address with a port free a moment ago (for a listener the server binds itself).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// An ext_authz `CheckRequest` as Envoy sends it: the request's headers and path, and the
/// route's `context_extensions`.
pub fn check_request(
    headers: &[(&str, &str)],
    path: &str,
    extensions: &[(&str, &str)],
) -> CheckRequest {
    let pairs = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: path.into(),
                    headers: pairs(headers),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: pairs(extensions),
            ..Default::default()
        }),
    }
}

/// A validation request.
pub fn request(token: &str, tenant: &str) -> tokengate::pb::ValidateTokenRequest {
    tokengate::pb::ValidateTokenRequest {
        token: token.into(),
        tenant: tenant.into(),
        correlation_id: String::new(),
    }
}

/// A `ValidateStream` left open after one answer, and the sender that keeps it open.
pub type OpenStream = (
    tokio::sync::mpsc::Sender<tokengate::pb::ValidateTokenRequest>,
    tonic::Streaming<tokengate::pb::ValidateTokenResponse>,
);

/// Opens a `ValidateStream` with `client` and has `token` answered on it (the answer is
/// returned). While the sender lives the stream stays open and holds a place of
/// `max_in_flight`; drop the sender to close it.
pub async fn open_stream(
    client: &mut Client,
    token: &str,
) -> (OpenStream, tokengate::pb::ValidateTokenResponse) {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender.send(request(token, "")).await.expect("send");
    let mut answers = client
        .validate_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream")
        .into_inner();
    let first = answers.message().await.expect("answer").expect("one");
    ((sender, answers), first)
}

/// Validates one token over gRPC (`tenant` empty: chosen by issuer).
pub async fn judge(
    client: &mut tokengate::pb::token_validator_client::TokenValidatorClient<
        tonic::transport::Channel,
    >,
    token: &str,
    tenant: &str,
) -> tokengate::pb::ValidateTokenResponse {
    client
        .validate_token(request(token, tenant))
        .await
        .expect("rpc")
        .into_inner()
}

/// The value of the first series of `metric` whose labels contain every comma-separated part
/// of `labels`, in a Prometheus text scrape.
pub fn series_value(scrape: &str, metric: &str, labels: &str) -> f64 {
    scrape
        .lines()
        .find(|line| {
            line.starts_with(&format!("{metric}{{"))
                && labels.split(',').all(|part| line.contains(part))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no series {metric}{{{labels}}} in:\n{scrape}"))
}

/// The flat verdict on one token, judged at `now` with the keys loaded so far (no refetch), as
/// `tokengate validate` reports it.
pub trait VerdictAt {
    /// Judges `token` for `tenant` (empty: by issuer) at `now`.
    fn validate(&self, token: &str, tenant: &str, now: i64) -> tokengate::Verdict;
}

impl VerdictAt for tokengate::Validator {
    fn validate(&self, token: &str, tenant: &str, now: i64) -> tokengate::Verdict {
        tokengate::Verdict::from(self.judge_at(token, tenant, now))
    }
}
