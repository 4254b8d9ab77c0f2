//! Case: the OpenAPI document a server publishes at `/openapi.json` is the reference
//! document (so every server publishes the same one), documents every route, and allows
//! every answer of the reference conversation: its status is listed for its operation and
//! its body is valid against that response's schema.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::transcript::{CONVERSATION_ENV, Exchange, converse};
use crate::{Server, Target, get};

/// The document every server must publish, in this crate.
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/reference/openapi.json");

/// Case: the answers conform to the OpenAPI document.
pub async fn the_answers_conform_to_the_openapi_document(target: Target) {
    let Some(server) = Server::start(target, &CONVERSATION_ENV) else {
        return;
    };
    let published = get(&server, "/openapi.json", None).await;
    assert_eq!(published.status, 200, "{}", published.text);
    let document = published.json();
    same_as_reference(&document, Path::new(REFERENCE), target);

    let mut exchanges = converse(&server).await.exchanges;
    exchanges.push(Exchange {
        method: Method::GET,
        path: "/openapi.json".to_owned(),
        status: published.status,
        headers: published.headers.clone(),
        text: published.text.clone(),
    });
    let mut exercised = BTreeSet::new();
    for exchange in &exchanges {
        // HEAD answers are GET's without a body; the document lists GET.
        if exchange.method == Method::HEAD {
            continue;
        }
        let what = format!("{} {} -> {}", exchange.method, exchange.path, exchange.status);
        let Some((template, operation)) = operation(&document, &exchange.method, &exchange.path) else {
            // No operation: the API's answers for a path or method no route takes.
            assert!([404, 405].contains(&exchange.status), "{what} is not documented");
            continue;
        };
        exercised.insert(format!("{} {template}", exchange.method));
        let Some(response) = operation["responses"].get(exchange.status.to_string()) else {
            panic!("{what}: the status is not documented for {template}: {}", exchange.text);
        };
        conforms(&document, response, exchange, &what);
    }
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_ascii_uppercase()))
        })
        .collect();
    let missed: Vec<&String> = documented.difference(&exercised).collect();
    assert!(missed.is_empty(), "documented but never exercised: {missed:?}");
}

/// The operation of `document` that `method path` calls, and its path template.
fn operation<'a>(document: &'a Value, method: &Method, path: &str) -> Option<(&'a str, &'a Value)> {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    document["paths"].as_object()?.iter().find_map(|(template, item)| {
        let parts: Vec<&str> = template.split('/').collect();
        let matches = parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(part, segment)| part == segment || (part.starts_with('{') && !segment.is_empty()));
        let operation = item.get(method.as_str().to_ascii_lowercase())?;
        matches.then_some((template.as_str(), operation))
    })
}

/// Asserts that `exchange`'s answer is what `response` documents: its content type and a
/// body valid against its schema, or no body; its required headers.
fn conforms(document: &Value, response: &Value, exchange: &Exchange, what: &str) {
    let content_type = exchange
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        assert!(
            exchange.text.is_empty(),
            "{what}: a body where none is documented: {}",
            exchange.text
        );
        return;
    };
    assert_eq!(content_type, Some("application/json"), "{what}");
    let body: Value =
        serde_json::from_str(&exchange.text).unwrap_or_else(|_| panic!("{what}: not JSON: {}", exchange.text));
    // The response's schema, with the document's components beside it so that its
    // `#/components/schemas/..` references resolve.
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator =
        jsonschema::validator_for(&root).unwrap_or_else(|error| panic!("{what}: the schema does not compile: {error}"));
    let errors: Vec<String> = validator.iter_errors(&body).map(|error| error.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what}: the body breaks the schema: {errors:?}\n{body}"
    );
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        if header["required"] == true {
            assert!(exchange.headers.contains_key(name.as_str()), "{what}: no {name} header");
        }
    }
}

/// Asserts that `document` is the reference document, or writes it there with
/// `HTTP_CONTRACT_BLESS=1`.
fn same_as_reference(document: &Value, reference: &Path, target: Target) {
    let pretty = serde_json::to_string_pretty(document).unwrap() + "\n";
    if std::env::var("HTTP_CONTRACT_BLESS").is_ok_and(|value| value == "1") {
        std::fs::write(reference, &pretty).unwrap();
        eprintln!("wrote {}", reference.display());
        return;
    }
    let expected = std::fs::read_to_string(reference).unwrap_or_else(|_| {
        panic!(
            "no reference at {}: write it with HTTP_CONTRACT_BLESS=1",
            reference.display()
        )
    });
    if expected != pretty {
        let saved = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&saved, &pretty).unwrap();
        panic!(
            "{} on {:?} publishes another OpenAPI document than {} (it is in {}; diff them)",
            target.binary,
            target.backend,
            reference.display(),
            saved.display()
        );
    }
}
