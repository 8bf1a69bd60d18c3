//! The gateway serves `/openapi.json` from a committed file because it does
//! not link the services; this crate links them all, so it is where the file
//! is held to what the services' annotations say today.

use std::path::PathBuf;

const REGENERATE: &str = "MICRO_UPDATE_OPENAPI=1 cargo nextest run -p stack openapi";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gateway/openapi.json")
}

fn regenerated() -> String {
    let document = gateway::openapi::merge([auth::openapi(), payments::openapi(), ledger::openapi()]);
    let mut text = serde_json::to_string_pretty(&document).expect("the document serialises");
    text.push('\n');
    text
}

#[test]
fn the_committed_openapi_document_is_what_the_services_describe() {
    let fresh = regenerated();
    let path = committed_path();
    if std::env::var_os("MICRO_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write the document");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is not what the services describe (first difference at line {}); regenerate it with `{REGENERATE}` and commit the result",
            path.display(),
            line + 1,
        );
    }
    // What the gateway compiled in is the file on disk.
    assert_eq!(
        gateway::openapi::DOCUMENT,
        fresh,
        "rebuild the gateway after regenerating"
    );
}

#[test]
fn the_openapi_document_lists_no_internal_route() {
    let document: serde_json::Value = serde_json::from_str(&regenerated()).expect("JSON");
    let paths = document["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| !p.starts_with("/internal")),
        "{:?}",
        paths.keys()
    );
    assert!(paths.contains_key("/v1/events/stream"));
}
