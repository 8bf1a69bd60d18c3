//! Canonical request paths, and upstream URLs built from them.
//!
//! The gateway routes on the raw path, while the HTTP client that forwards a
//! request resolves dot segments in the URL it is given. A raw path such as
//! `/v1/ledger/%2e%2e/%2e%2e/internal/...` therefore matched a public prefix
//! and landed on a service's internal route. So a path is refused unless it
//! is canonical in every spelling, and the upstream URL is rebuilt from its
//! decoded segments, each percent-encoded again, never from the raw text.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use reqwest::Url;

use crate::GatewayError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with a slash")]
    NotAbsolute,
    #[error("the path has an empty segment (a double or trailing slash)")]
    EmptySegment,
    #[error("the path has a dot segment (. or ..) in some spelling")]
    DotSegment,
    #[error("the path has an encoded slash or backslash")]
    EncodedSeparator,
    #[error("the path has a backslash")]
    Backslash,
    #[error("the path has a NUL or another control character")]
    ControlCharacter,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path is not UTF-8 once decoded")]
    NotUtf8,
    #[error("the query string has a malformed percent-escape or a control character")]
    BadQuery,
    /// Only a defect in the gateway could produce this; see [`CanonicalPath::upstream_url`].
    #[error("the path does not stay under the route it matched")]
    OutsidePrefix,
}

/// A request path that passed every check: its decoded segments and its
/// (well-formed, still encoded) query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    segments: Vec<String>,
    query: Option<String>,
}

impl CanonicalPath {
    pub fn parse(path: &str, query: Option<&str>) -> Result<Self, PathError> {
        let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let segments = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').map(segment).collect::<Result<_, _>>()?
        };
        if let Some(query) = query {
            check_query(query)?;
        }
        Ok(Self {
            segments,
            query: query.map(str::to_owned),
        })
    }

    /// The URL to forward to: `base`, then each segment percent-encoded, then
    /// the query. `prefix` is the literal start of the route that matched
    /// (`/v1/ledger/` for `/v1/ledger/{*rest}`); the result must stay under
    /// it, or nothing is sent.
    pub fn upstream_url(&self, base: &Url, prefix: &str) -> Result<Url, PathError> {
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| PathError::OutsidePrefix)?
            .pop_if_empty()
            .extend(&self.segments);
        url.set_query(self.query.as_deref());
        let under = format!("{}{prefix}", base.path().trim_end_matches('/'));
        let stays_under = url.path().starts_with(&under)
            && !url
                .path()
                .split('/')
                .skip(1)
                .any(|s| is_dot_segment(s) || s.is_empty());
        if !stays_under {
            tracing::error!(path = %url.path(), prefix, "a canonical path left its route's prefix");
            return Err(PathError::OutsidePrefix);
        }
        Ok(url)
    }
}

/// One raw segment, checked and decoded.
fn segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(PathError::Backslash),
            b if b.is_ascii_control() => return Err(PathError::ControlCharacter),
            b'%' => {
                let decoded = escape_at(bytes, i).ok_or(PathError::BadEscape)?;
                match decoded {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    b if b.is_ascii_control() => return Err(PathError::ControlCharacter),
                    _ => {}
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8)?;
    if decoded == "." || decoded == ".." {
        return Err(PathError::DotSegment);
    }
    Ok(decoded.into_owned())
}

fn check_query(query: &str) -> Result<(), PathError> {
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_control() => return Err(PathError::BadQuery),
            b'%' => match escape_at(bytes, i) {
                Some(b) if !b.is_ascii_control() => i += 3,
                _ => return Err(PathError::BadQuery),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

/// The byte a `%XY` at `at` stands for, if it is a complete escape.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let high = hex(*bytes.get(at + 1)?)?;
    let low = hex(*bytes.get(at + 2)?)?;
    u8::try_from(high * 16 + low).ok()
}

/// `.` or `..` in any spelling a URL parser would resolve.
fn is_dot_segment(segment: &str) -> bool {
    matches!(
        percent_decode_str(segment).decode_utf8().as_deref(),
        Ok(".") | Ok("..")
    )
}

/// The literal start of a route template: `/v1/ledger/` for
/// `/v1/ledger/{*rest}`, the whole template when it has no parameter.
pub fn route_prefix(template: &str) -> &str {
    template.split('{').next().unwrap_or(template)
}

/// In front of every route, the unknown ones and the WebSocket included, and
/// before authentication: a non-canonical path is answered 400 and goes
/// nowhere.
pub async fn refuse_non_canonical(req: Request, next: Next) -> Response {
    if let Err(e) = CanonicalPath::parse(req.uri().path(), req.uri().query()) {
        let path: String = req.uri().path().chars().take(200).collect();
        tracing::warn!(error = %e, ?path, method = %req.method(), "refused a non-canonical path");
        metrics::counter!("gateway_non_canonical_paths_total").increment(1);
        return GatewayError::InvalidPath(e).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PREFIXES: [&str; 9] = [
        "/v1/payments",
        "/v1/payments/",
        "/v1/events",
        "/v1/events/",
        "/v1/ledger/",
        "/v1/webhooks/",
        "/auth/api-keys/",
        "/auth/me",
        "/auth/login",
    ];

    fn parse(path_and_query: &str) -> Result<CanonicalPath, PathError> {
        match path_and_query.split_once('?') {
            Some((path, query)) => CanonicalPath::parse(path, Some(query)),
            None => CanonicalPath::parse(path_and_query, None),
        }
    }

    #[test]
    fn refuses_every_spelling_of_the_reported_attack() {
        for dot in ["%2e", "%2E", "."] {
            for other in ["%2e", "%2E", "."] {
                let dots = format!("{dot}{other}");
                for path in [
                    format!("/v1/ledger/{dots}/{dots}/internal/payment-postings"),
                    format!("/v1/ledger/{dot}/internal"),
                    format!("/v1/webhooks/{dots}/{dots}/auth/api-keys"),
                ] {
                    assert_eq!(parse(&path), Err(PathError::DotSegment), "{path}");
                }
            }
        }
        let cases = [
            ("/v1/ledger/a%2f..%2finternal", PathError::EncodedSeparator),
            ("/v1/ledger/a%2F..", PathError::EncodedSeparator),
            ("/v1/ledger/..%5cinternal", PathError::EncodedSeparator),
            ("/v1/ledger/..%5Cinternal", PathError::EncodedSeparator),
            ("/v1/ledger/..\\internal", PathError::Backslash),
            ("/v1/ledger/a%00", PathError::ControlCharacter),
            ("/v1/ledger/a\0", PathError::ControlCharacter),
            ("/v1/ledger//accounts", PathError::EmptySegment),
            ("/v1/ledger/accounts/", PathError::EmptySegment),
            ("/v1/ledger/%zz", PathError::BadEscape),
            ("/v1/ledger/%2", PathError::BadEscape),
            ("/v1/ledger/%ff", PathError::NotUtf8),
            ("/v1/ledger/%c0%ae%c0%ae", PathError::NotUtf8),
            ("/v1/ledger/accounts?limit=%", PathError::BadQuery),
            ("/v1/ledger/accounts?a=%00", PathError::BadQuery),
            ("v1/ledger", PathError::NotAbsolute),
        ];
        for (path, expected) in cases {
            assert_eq!(parse(path), Err(expected), "{path}");
        }
    }

    #[test]
    fn forwards_ordinary_paths_unchanged() {
        let base = Url::parse("http://127.0.0.1:8083").expect("url");
        for (path, prefix) in [
            (
                "/v1/ledger/accounts?limit=10&starting_after=acct_1",
                "/v1/ledger/",
            ),
            ("/v1/payments", "/v1/payments"),
            ("/v1/payments/pay_1/refunds", "/v1/payments/"),
            ("/v1/events?type=payment.succeeded", "/v1/events"),
            ("/auth/api-keys/key_1", "/auth/api-keys/"),
        ] {
            let url = parse(path)
                .and_then(|p| p.upstream_url(&base, prefix))
                .expect("canonical");
            assert_eq!(&url.as_str()["http://127.0.0.1:8083".len()..], path);
        }
        // What decodes to something else is encoded again, once.
        let url = parse("/v1/ledger/accounts/a%20b%25c%3Fd")
            .and_then(|p| p.upstream_url(&base, "/v1/ledger/"))
            .expect("canonical");
        assert_eq!(url.path(), "/v1/ledger/accounts/a%20b%25c%3Fd");
    }

    #[test]
    fn route_prefixes_are_the_literal_start_of_the_template() {
        assert_eq!(route_prefix("/v1/ledger/{*rest}"), "/v1/ledger/");
        assert_eq!(route_prefix("/auth/api-keys/{id}"), "/auth/api-keys/");
        assert_eq!(route_prefix("/auth/me"), "/auth/me");
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            "/",
            "/",
            ".",
            ".",
            "%2e",
            "%2E",
            "%2f",
            "%2F",
            "%5c",
            "%5C",
            "\\",
            "a",
            "b",
            "internal",
            "payment-postings",
            "%25",
            "%",
            "%00",
            "?",
            "=",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever path is sent under a public prefix, what would be
        /// forwarded stays under that prefix's upstream path and has no dot
        /// segment; anything with a dot segment in any spelling is refused.
        #[test]
        fn what_is_forwarded_stays_under_its_prefix(
            prefix in prop::sample::select(PREFIXES.to_vec()),
            tail in prop::collection::vec(token(), 0..12),
            base in prop::sample::select(vec!["http://127.0.0.1:8083", "http://ledger:8083/behind/a/proxy"]),
        ) {
            let raw = format!("{prefix}{}", tail.concat());
            let base = Url::parse(base).expect("url");
            let (path, _) = raw.split_once('?').unwrap_or((&raw, ""));
            let has_dot_segment = path.split('/').any(|s| {
                let lowered = s.to_ascii_lowercase();
                lowered == "." || lowered == ".." || lowered.replace("%2e", ".") == "." || lowered.replace("%2e", ".") == ".."
            });
            if let Ok(url) = parse(&raw).and_then(|p| p.upstream_url(&base, prefix)) {
                prop_assert!(!has_dot_segment, "{raw} was accepted");
                let under = format!("{}{prefix}", base.path().trim_end_matches('/'));
                prop_assert!(url.path().starts_with(&under), "{raw} -> {url}");
                prop_assert!(!url.path().starts_with("/internal"), "{raw} -> {url}");
                for segment in url.path().split('/').skip(1) {
                    prop_assert!(!is_dot_segment(segment), "{raw} -> {url}");
                    prop_assert!(!segment.is_empty(), "{raw} -> {url}");
                    prop_assert!(!segment.to_ascii_lowercase().contains("%2f"), "{raw} -> {url}");
                    prop_assert!(!segment.to_ascii_lowercase().contains("%5c"), "{raw} -> {url}");
                }
                // The client parses the URL once more; it must not move.
                let again = Url::parse(url.as_str()).expect("a URL parses again");
                prop_assert_eq!(again.path(), url.path());
            }
            if has_dot_segment {
                prop_assert!(parse(&raw).is_err(), "{raw} was accepted");
            }
        }
    }
}
