//! The metrics layer over a tower service that answers with a fixed `grpc-status`.

use std::convert::Infallible;
use std::future::Ready;

use metrics_exporter_prometheus::PrometheusBuilder;

use super::*;

/// A gRPC service that answers every call with a trailers-only `grpc-status`.
#[derive(Clone, Copy)]
struct Answer(&'static str);

impl Service<http::Request<String>> for Answer {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        let response = http::Response::builder()
            .header("grpc-status", self.0)
            .body(String::new());
        std::future::ready(Ok(response.unwrap_or_default()))
    }
}

async fn call<S>(service: &mut GrpcMetrics<S>, path: &str)
where
    S: Service<
            http::Request<String>,
            Response = http::Response<String>,
            Future = Ready<Result<http::Response<String>, Infallible>>,
            Error = Infallible,
        >,
{
    let request = http::Request::builder()
        .uri(path)
        .body(String::new())
        .expect("request");
    let _ = service.call(request).await;
}

fn handled(scrape: &str, labels: &[&str]) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{"))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn served_methods_are_labelled_from_their_services_and_other_paths_as_unknown() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let scrape = recorder.handle();
    let layer = metrics::with_local_recorder(&recorder, || {
        GrpcMetricsLayer::new(&[
            ServedService::described(
                crate::pb::token_validator_server::SERVICE_NAME,
                crate::pb::FILE_DESCRIPTOR_SET,
            ),
            ServedService::with_methods(
                "envoy.service.auth.v3.Authorization",
                &[("Check", "unary")],
            ),
        ])
    });
    let mut ok = layer.layer(Answer("0"));
    let mut unimplemented = layer.layer(Answer("12"));
    call(&mut ok, "/envoy.service.auth.v3.Authorization/Check").await;
    call(&mut ok, "/envoy.service.auth.v3.Authorization/Check").await;
    call(&mut ok, "/tokengate.v1.TokenValidator/ValidateStream").await;
    call(&mut unimplemented, "/nope.v1.Nothing/Call").await;
    let text = scrape.render();
    let check = [
        r#"grpc_type="unary""#,
        r#"grpc_service="envoy.service.auth.v3.Authorization""#,
        r#"grpc_method="Check""#,
        r#"grpc_code="OK""#,
    ];
    assert_eq!(handled(&text, &check), Some(2.0), "{text}");
    let stream = [
        r#"grpc_type="bidi_stream""#,
        r#"grpc_method="ValidateStream""#,
        r#"grpc_code="OK""#,
    ];
    assert_eq!(handled(&text, &stream), Some(1.0), "{text}");
    let unknown = [
        r#"grpc_type="unknown""#,
        r#"grpc_service="unknown""#,
        r#"grpc_method="unknown""#,
        r#"grpc_code="Unimplemented""#,
    ];
    assert_eq!(handled(&text, &unknown), Some(1.0), "{text}");
    let unary = [r#"grpc_type="unary""#, r#"grpc_method="ValidateToken""#];
    assert_eq!(handled(&text, &unary), Some(0.0), "{text}");
}
