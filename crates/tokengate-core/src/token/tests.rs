//! Strict decoding of compact JWS: segments, base64url, JSON, claim types.

use super::*;

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn token(header: &str, payload: &str) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
}

fn reason_of(token: &str) -> Option<Reason> {
    let decoded = match DecodedToken::decode(token, &Limits::default()) {
        Ok(decoded) => decoded,
        Err(rejection) => return Some(rejection.reason),
    };
    decoded.parse().err().map(|rejection| rejection.reason)
}

#[test]
fn strips_bearer_prefix_and_whitespace() {
    assert_eq!(strip_bearer("Bearer abc"), "abc");
    assert_eq!(strip_bearer("bearer   abc\n"), "abc");
    assert_eq!(strip_bearer(" abc "), "abc");
    assert_eq!(strip_bearer("Bearerabc"), "Bearerabc");
}

#[test]
fn parses_registered_claims_with_their_types() {
    let raw = token(
        r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#,
        r#"{"iss":"https://i","sub":"s","aud":["a","b"],"exp":1.5,"nbf":1,"iat":0,"scp":"x y"}"#,
    );
    let decoded = DecodedToken::decode(&raw, &Limits::default()).expect("decodes");
    let parsed = decoded.parse().expect("parses");
    assert_eq!(parsed.header.alg, "RS256");
    assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
    assert_eq!(parsed.claims.iss.as_deref(), Some("https://i"));
    assert!(parsed.claims.aud.contains("b"));
    assert_eq!(parsed.claims.aud.iter().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(parsed.claims.exp, Some(1.5));
    assert_eq!(parsed.claims.string("scp").as_deref(), Some("x y"));
    assert_eq!(parsed.signature, b"sig");
}

#[test]
fn rejects_bad_shapes_as_malformed() {
    let good_header = r#"{"alg":"RS256"}"#;
    let good_payload = r#"{"sub":"s"}"#;
    let good = token(good_header, good_payload);
    let padded = format!("{}=.{}.{}", b64(good_header), b64(good_payload), b64("sig"));
    let cases = [
        String::new(),
        "abc".to_string(),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        format!("{good}."),
        padded,
        good.replacen('.', " .", 1),
        format!("{good}+"),
        format!("{good}=="),
        format!("{}.{}.{}", b64("[1]"), b64(good_payload), b64("s")),
        format!("{}.{}.{}", b64(good_header), b64("[]"), b64("s")),
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","alg":"none"}"#),
            b64(good_payload),
            b64("s")
        ),
        format!(
            "{}.{}.{}",
            b64(good_header),
            b64(r#"{"sub":"a","sub":"b"}"#),
            b64("s")
        ),
        format!("{}.{}.{}", b64(r#"{"alg":1}"#), b64(good_payload), b64("s")),
        format!(
            "{}.{}.{}",
            b64(r#"{"kid":"k"}"#),
            b64(good_payload),
            b64("s")
        ),
        token(good_header, r#"{"exp":"1700000000"}"#),
        token(good_header, r#"{"exp":true}"#),
        token(good_header, r#"{"nbf":null}"#),
        token(good_header, r#"{"aud":1}"#),
        token(good_header, r#"{"aud":["a",1]}"#),
        token(good_header, r#"{"iss":["a"]}"#),
        token(good_header, r#"{"sub":{}}"#),
        token(
            &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(300)),
            good_payload,
        ),
        token(
            good_header,
            &format!(r#"{{"x":{}1{}}}"#, "[".repeat(40), "]".repeat(40)),
        ),
    ];
    for case in cases {
        assert_eq!(reason_of(&case), Some(Reason::Malformed), "{case}");
    }
    assert_eq!(reason_of(&good), None);
}

#[test]
fn recognises_jwe_and_oversized_tokens() {
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    let rejection = DecodedToken::decode(jwe, &Limits::default()).expect_err("JWE");
    assert_eq!(rejection.reason, Reason::Malformed);
    assert!(rejection.detail.contains("JWE"));
    let limits = Limits { max_token_size: 64 };
    let big = token(
        r#"{"alg":"RS256"}"#,
        &format!(r#"{{"x":"{}"}}"#, "y".repeat(100)),
    );
    let rejection = DecodedToken::decode(&big, &limits).expect_err("too large");
    assert_eq!(rejection.reason, Reason::TokenTooLarge);
}

#[test]
fn many_dots_are_counted_not_split() {
    let dots = ".".repeat(100_000);
    let limits = Limits {
        max_token_size: 1 << 20,
    };
    let rejection = DecodedToken::decode(&dots, &limits).expect_err("dots");
    assert_eq!(rejection.reason, Reason::Malformed);
}
