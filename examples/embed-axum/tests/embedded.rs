//! The embedding example, run as its users would run it, over HTTP.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_service_serves_its_routes_beside_the_api() {
    http_contract::cases::embedding::an_embedded_service_serves_its_routes_beside_the_api(
        env!("CARGO_BIN_EXE_embed-axum"),
        "",
    )
    .await;
}

#[test]
fn the_readme_shows_this_example_as_it_is() {
    let readme = include_str!("../../../README.md");
    let listing = format!("```rust,ignore\n{}```", include_str!("../src/main.rs"));
    assert!(
        readme.contains(&listing),
        "README.md's Embedding chapter must show examples/embed-axum/src/main.rs verbatim"
    );
}
