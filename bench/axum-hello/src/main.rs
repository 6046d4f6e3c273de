//! `axum-hello ADDR`: answers `GET /hello` with the same bytes as the tests' component.

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { ([("content-type", "text/plain; charset=utf-8")], "hello from a component\n") }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
