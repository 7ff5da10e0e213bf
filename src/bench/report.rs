//! What `tokengate bench` prints: a table for people, or one JSON object for machines.

use serde::Serialize;

use super::{BenchOptions, Measured, Mode};

/// Figures of one phase.
#[derive(Debug, Serialize)]
pub(crate) struct Figures {
    /// Calls answered per second.
    pub calls_per_second: f64,
    /// Tokens judged per second (calls × batch size for batches).
    pub validations_per_second: f64,
    /// Latency per call, 50th percentile, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// CPU of the load generator per validation, microseconds.
    pub client_cpu_us: Option<f64>,
    /// CPU of the server per validation (with `--server-pid`), microseconds.
    pub server_cpu_us: Option<f64>,
    /// Calls answered (a batch call judges several tokens).
    pub calls: u64,
    /// Tokens judged.
    pub validations: u64,
    /// Answers with the wrong verdict.
    pub wrong: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls the server shed (refused at once for being over a limit).
    pub shed: u64,
    /// Latency of the shed answers, 99th percentile, microseconds.
    pub shed_p99_us: f64,
    /// When the first call failed or was shed, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure_unix_ms: Option<i64>,
    /// The first wrong or failed answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<String>,
}

impl Figures {
    fn new(measured: Measured) -> Self {
        let tally = measured.tally;
        let seconds = measured.seconds.max(f64::MIN_POSITIVE);
        let validations = tally.validations.max(1) as f64;
        let percentile = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
        let per_validation = |cpu: Option<f64>| cpu.map(|seconds| seconds * 1e6 / validations);
        Self {
            calls_per_second: tally.calls as f64 / seconds,
            validations_per_second: tally.validations as f64 / seconds,
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
            p999_us: percentile(0.999),
            client_cpu_us: per_validation(measured.client_cpu),
            server_cpu_us: per_validation(measured.server_cpu),
            calls: tally.calls,
            validations: tally.validations,
            wrong: tally.wrong,
            failed: tally.failed,
            shed: tally.shed,
            shed_p99_us: tally.shed_latency.value_at_quantile(0.99) as f64 / 1000.0,
            first_failure_unix_ms: tally.first_failure_ms,
            first_problem: tally.first_problem,
        }
    }
}

/// The result of a bench run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The mode.
    pub mode: String,
    /// Connections.
    pub connections: u32,
    /// Calls in flight per connection.
    pub in_flight: u32,
    /// Tokens per batch call (batch mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    /// Seconds measured.
    pub duration_s: f64,
    /// Distinct tokens in the file.
    pub distinct_tokens: usize,
    /// The measured calls.
    pub measured: Figures,
    /// The no-op ceiling on the same server (Health/Check, or GET /auth without a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Figures>,
    /// Whether shed calls are expected (`--allow-shed`).
    pub allow_shed: bool,
    /// validations/s ÷ ceiling calls/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_ceiling: Option<f64>,
}

impl Report {
    /// Builds the report of a run.
    pub(crate) fn new(
        options: &BenchOptions,
        distinct_tokens: usize,
        measured: Measured,
        ceiling: Option<Measured>,
    ) -> Self {
        let measured = Figures::new(measured);
        let ceiling = ceiling.map(Figures::new);
        let ratio_to_ceiling = ceiling
            .as_ref()
            .filter(|ceiling| ceiling.calls_per_second > 0.0)
            .map(|ceiling| measured.validations_per_second / ceiling.calls_per_second);
        let mode = match options.mode {
            Mode::Unary => "unary",
            Mode::Batch => "batch",
            Mode::Stream => "stream",
            Mode::Check => "check",
            Mode::ForwardAuth => "forward-auth",
            Mode::Health => "health",
        };
        Self {
            mode: mode.to_owned(),
            connections: options.connections,
            in_flight: options.in_flight,
            batch: (options.mode == Mode::Batch).then_some(options.batch),
            duration_s: options.duration.as_secs_f64(),
            distinct_tokens,
            measured,
            ceiling,
            allow_shed: options.allow_shed,
            ratio_to_ceiling,
        }
    }

    /// Whether every answer was right and every call succeeded (or was shed, with
    /// `--allow-shed`).
    pub(crate) fn all_right(&self) -> bool {
        let clean = |figures: &Figures| {
            figures.wrong == 0 && figures.failed == 0 && (self.allow_shed || figures.shed == 0)
        };
        clean(&self.measured)
            && self.ceiling.as_ref().is_none_or(clean)
            && self.measured.validations > 0
    }

    /// The report as a table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let batch = self
            .batch
            .map_or_else(String::new, |batch| format!(", {batch} tokens a call"));
        out.push_str(&format!(
            "tokengate bench: {} — {} connections × {} in flight{batch}, {:.0}s, {} distinct tokens\n",
            self.mode, self.connections, self.in_flight, self.duration_s, self.distinct_tokens
        ));
        let ceiling_name = if self.mode == "forward-auth" {
            "ceiling (GET /auth, no token)"
        } else {
            "ceiling (Health/Check)"
        };
        out.push_str(&format!(
            "{:<32}{:>14}{:>12}{:>12}{:>12}{:>14}{:>14}\n",
            "", "validations/s", "p50", "p99", "p99.9", "server CPU", "client CPU"
        ));
        out.push_str(&row("measured", &self.measured));
        if let Some(ceiling) = &self.ceiling {
            out.push_str(&row(ceiling_name, ceiling));
        }
        if let Some(ratio) = self.ratio_to_ceiling {
            out.push_str(&format!("ratio: × {ratio:.2} of the ceiling's calls/s\n"));
        }
        out.push_str(&format!(
            "verdicts: {} checked, {} wrong, {} failed calls\n",
            self.measured.validations, self.measured.wrong, self.measured.failed
        ));
        if self.measured.shed > 0 {
            out.push_str(&format!(
                "shed: {} calls refused at once (over a limit), p99 {}\n",
                self.measured.shed,
                latency(self.measured.shed_p99_us)
            ));
        }
        if let Some(problem) = &self.measured.first_problem {
            out.push_str(&format!("first problem: {problem}\n"));
        }
        out
    }
}

fn row(name: &str, figures: &Figures) -> String {
    let cpu = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |us| format!("{us:.1} µs"));
    format!(
        "{name:<32}{:>14.0}{:>12}{:>12}{:>12}{:>14}{:>14}\n",
        figures.validations_per_second,
        latency(figures.p50_us),
        latency(figures.p99_us),
        latency(figures.p999_us),
        cpu(figures.server_cpu_us),
        cpu(figures.client_cpu_us),
    )
}

fn latency(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}
