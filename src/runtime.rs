//! The running configuration: one [`Snapshot`] of the configuration and the validator built
//! for it (tenants, cache), replaced whole on a reload (SIGHUP or a change of the configuration
//! file), while requests keep the snapshot they started with.
//!
//! A reload keeps every tenant whose configuration is unchanged, keys and refresh task included,
//! so it causes no refetch storm. A configuration that fails its checks changes nothing.
//!
//! May import: `config`, `keys`, `tenants`, `validator`. Transports and `ops` read snapshots.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::clock;
use crate::config::{Config, ConfigErrors};
use crate::keys::fetch::Fetcher;
use crate::keys::refresh;
use crate::tenants::registry::Registry;
use crate::tenants::tenant::Tenant;
use crate::validator::Validator;

/// How often the configuration files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Listen addresses given on the command line; they win over the file's, also after reloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Overrides {
    /// Applies the overrides to a configuration.
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(metrics_listen) = self.metrics_listen {
            config.metrics_listen = Some(metrics_listen);
        }
    }
}

/// One configuration and the validator built for it, swapped together: a request that loads a
/// snapshot sees the settings and the tenants of the same configuration.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The checked configuration (with the command line's overrides applied).
    pub config: Arc<Config>,
    /// The use-case over this configuration's tenants.
    pub validator: Arc<Validator>,
}

impl Snapshot {
    /// The snapshot of `config` for a server that started at `started_at` (seconds since the
    /// epoch), which sets the end of the start-up grace.
    fn new(config: Config, registry: Registry, started_at: i64) -> Self {
        let grace = i64::try_from(config.refresh.startup_grace.as_secs()).unwrap_or(i64::MAX);
        let validator = Validator::new(&config, Arc::new(registry))
            .with_startup_grace_until(started_at.saturating_add(grace));
        let validator = Arc::new(validator);
        Self {
            config: Arc::new(config),
            validator,
        }
    }

    /// The tenants.
    pub(crate) fn registry(&self) -> &Registry {
        self.validator.registry()
    }
}

/// The running configuration and everything that follows it.
pub(crate) struct Runtime {
    current: ArcSwap<Snapshot>,
    /// When the server started (seconds since the epoch).
    started_at: i64,
    path: Option<PathBuf>,
    overrides: Overrides,
    fetcher: Fetcher,
    changed: Arc<Notify>,
    reloads_succeeded: metrics::Counter,
    reloads_failed: metrics::Counter,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the registry for `config` and starts loading remote keys. `path` is the file a
    /// reload reads (none for the embedded default).
    pub(crate) fn start(
        mut config: Config,
        path: Option<PathBuf>,
        overrides: Overrides,
        fetcher: Fetcher,
    ) -> Arc<Self> {
        overrides.apply(&mut config);
        let started_at = clock::now();
        let (registry, fresh) = Registry::rebuild(&config, None, started_at);
        let tenants: Vec<&str> = registry
            .tenants()
            .iter()
            .map(|tenant| tenant.id())
            .collect();
        tracing::info!(
            file = path.as_ref().map(|path| path.display().to_string()),
            ?tenants,
            "configuration loaded"
        );
        let live = Arc::new(Self {
            current: ArcSwap::from_pointee(Snapshot::new(config, registry, started_at)),
            started_at,
            path,
            overrides,
            fetcher,
            changed: Arc::new(Notify::new()),
            reloads_succeeded: metrics::counter!("tokengate_config_reloads_total", "outcome" => "success"),
            reloads_failed: metrics::counter!("tokengate_config_reloads_total", "outcome" => "failure"),
        });
        live.spawn_refreshers(&fresh);
        live
    }

    /// The current configuration and validator. Hold the returned `Arc` for the whole request.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Notified whenever keys load or the configuration changes (for health).
    pub(crate) fn changed(&self) -> &Arc<Notify> {
        &self.changed
    }

    fn spawn_refreshers(self: &Arc<Self>, tenants: &[Arc<Tenant>]) {
        for tenant in tenants.iter().filter(|tenant| tenant.is_remote()) {
            let live: Weak<Self> = Arc::downgrade(self);
            let on_loaded: refresh::OnLoaded = Arc::new(move || {
                if let Some(live) = live.upgrade() {
                    live.current.load().registry().reindex_issuers();
                    live.changed.notify_waiters();
                }
            });
            refresh::spawn(tenant.keys(), self.fetcher.clone(), on_loaded);
        }
    }

    /// Reads the configuration file again and applies it; on any error nothing changes.
    pub(crate) fn reload(self: &Arc<Self>) -> Result<(), ConfigErrors> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut config = match Config::load(path) {
            Ok(config) => config,
            Err(errors) => {
                self.reloads_failed.increment(1);
                tracing::error!(
                    errors = errors.0.len(),
                    "configuration reload rejected; the running configuration stays"
                );
                for error in &errors.0 {
                    tracing::error!(%error, "configuration error");
                }
                return Err(errors);
            }
        };
        self.overrides.apply(&mut config);
        self.apply(config);
        Ok(())
    }

    /// Swaps in a checked configuration.
    pub(crate) fn apply(self: &Arc<Self>, config: Config) {
        let current = self.snapshot();
        if config.listen != current.config.listen
            || config.metrics_listen != current.config.metrics_listen
            || config.limits != current.config.limits
        {
            tracing::warn!(
                "listen, metrics_listen and limits changes take effect only after a restart"
            );
        }
        let previous = current.registry();
        let (registry, fresh) = Registry::rebuild(&config, Some(previous), clock::now());
        let ids = |registry: &Registry| -> Vec<String> {
            registry
                .tenants()
                .iter()
                .map(|tenant| tenant.id().to_owned())
                .collect()
        };
        let (old_ids, new_ids) = (ids(previous), ids(&registry));
        let added: Vec<&String> = new_ids.iter().filter(|id| !old_ids.contains(id)).collect();
        let removed: Vec<&String> = old_ids.iter().filter(|id| !new_ids.contains(id)).collect();
        let changed: Vec<&str> = fresh
            .iter()
            .map(|tenant| tenant.id())
            .filter(|id| old_ids.iter().any(|old| old == id))
            .collect();
        let kept = new_ids.len() - fresh.len();
        let snapshot = Snapshot::new(config, registry, self.started_at);
        self.current.store(Arc::new(snapshot));
        // A kept tenant may have loaded keys (and a discovered issuer) while the new registry
        // was being built: index again now that it is the current one.
        self.current.load().registry().reindex_issuers();
        self.spawn_refreshers(&fresh);
        self.reloads_succeeded.increment(1);
        self.changed.notify_waiters();
        tracing::info!(?added, ?changed, ?removed, kept, "configuration reloaded");
    }

    /// A digest of the configuration file and the key files it names, to notice changes.
    fn files_digest(&self) -> Option<u64> {
        let path = self.path.as_ref()?;
        let mut hasher = DefaultHasher::new();
        std::fs::read(path).ok()?.hash(&mut hasher);
        for file in &self.current.load().config.files {
            std::fs::read(file).ok().hash(&mut hasher);
        }
        Some(hasher.finish())
    }
}

/// Reloads on SIGHUP and whenever the configuration file (or a key file it names) changes.
/// Files are compared by content every 2 s, which also follows Kubernetes ConfigMap updates
/// (a symlink swap that leaves the file's own inode untouched).
pub(crate) async fn watch(live: Arc<Runtime>) {
    // The SIGHUP handler is installed even without a file, so that SIGHUP never kills the
    // process (its default action).
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut digest = live.files_digest();
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let reason = tokio::select! {
            _ = signalled => {
                if live.path.is_none() {
                    tracing::info!("SIGHUP: the embedded configuration has no file to reload");
                    continue;
                }
                digest = live.files_digest();
                "SIGHUP"
            }
            _ = ticker.tick() => {
                let now = live.files_digest();
                if now == digest || now.is_none() {
                    continue;
                }
                // Remember what triggered this reload: a write that lands while it runs
                // changes the digest again and is picked up on the next tick.
                digest = now;
                "the configuration file changed"
            }
        };
        tracing::info!(reason, "reloading the configuration");
        // A failed reload is logged by `reload`; the same broken file is not retried every 2 s
        // (a fix, another change, or SIGHUP retries it).
        let _ = live.reload();
    }
}
